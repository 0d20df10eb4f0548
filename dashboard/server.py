"""The dashboard's HTTP side: pages, fragments the pages fetch, and the live stream.

Every handler only reads: the board and trail (from Kafka) or the clusters through
`LiveReader`. The live stream is server-sent events: `record` messages carry a new
event's row for the Events and App pages, `row` messages the changed app's row for the
Apps page, both rendered by the same templates as the full pages. Its `id` is the
record's sequence number, so a reconnecting EventSource (`Last-Event-ID`) misses nothing
still kept in the trail.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources

import orjson
from aiohttp import web

from dashboard.auth import sign_in, token_middleware
from dashboard.board import AppRow
from dashboard.chart import duration_chart
from dashboard.diffview import basis, diff_lines
from dashboard.live import LiveReader, LiveReadError
from dashboard.records import OUTCOME_TYPES, Record
from dashboard.render import Pages
from dashboard.trail import Trail
from schemas import AppConfig, GitopsConfig

KEEPALIVE = 15.0
RECENT = 30
EVENTS_SHOWN = 500
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Views:
    """The handlers, with what they read passed in by the composition root."""

    def __init__(self, *, config: GitopsConfig, trail: Trail, live: LiveReader) -> None:
        self._config = config
        self._trail = trail
        self._live = live
        self._pages = Pages(keep_events=config.ui.max_events)
        static = resources.files("dashboard") / "static"
        self._static = {
            name: (static / name).read_bytes()
            for name in ("dashboard.css", "dashboard.js", "favicon.svg")
        }

    # ------------------------------------------------------------------ helpers

    def _common(self, page: str, title: str) -> dict[str, object]:
        return {
            "page": page,
            "title": title,
            "caught_up": self._trail.caught_up.is_set(),
            "last_seq": self._trail.last_seq,
        }

    def _html(self, text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, content_type="text/html", status=status)

    def _repo_urls(self) -> dict[str, str]:
        return {row.name: row.repo_url for row in self._trail.board.rows() if row.repo_url}

    def _row(self, request: web.Request) -> AppRow:
        row = self._trail.board.get(request.match_info["name"])
        if row is None:
            raise web.HTTPNotFound(text=f"no app named {request.match_info['name']!r}\n")
        return row

    def _known(self, request: web.Request) -> tuple[str, AppConfig]:
        """A configured or generated app, whose cluster and Git the dashboard can read."""
        name = request.match_info["name"]
        spec = self._trail.board.spec(name)
        if spec is None:
            raise web.HTTPNotFound(text=f"app {name!r} is neither configured nor generated\n")
        return name, spec

    def login_page(self, failed: bool) -> str:
        return self._pages.page("login.html", failed=failed, **self._common("login", "Sign in"))

    # ------------------------------------------------------------------ pages

    async def apps(self, request: web.Request) -> web.Response:
        rows = self._trail.board.rows()
        return self._html(
            self._pages.page(
                "apps.html",
                rows_html=self._pages.app_rows(rows),
                count=len(rows),
                q=request.query.get("q", ""),
                state=request.query.get("state", ""),
                **self._common("apps", "Apps"),
            )
        )

    async def app(self, request: web.Request) -> web.Response:
        row = self._row(request)
        recent = list(reversed(row.recent))[:RECENT]
        return self._html(
            self._pages.page(
                "app.html",
                row=row,
                records_html=self._pages.event_rows(recent, self._repo_urls()),
                chart=duration_chart(list(row.outcomes)),
                **self._common("app", row.name),
            )
        )

    async def objects(self, request: web.Request) -> web.Response:
        name, spec = self._known(request)
        row = self._trail.board.get(name)
        actions = _last_actions(row.outcome if row else None)
        try:
            found = await self._live.objects(name, spec)
        except LiveReadError as exc:
            return self._html(self._pages.page("objects.html", error=str(exc)))
        return self._html(
            self._pages.page(
                "objects.html",
                error=None,
                objects=found.objects,
                commit=found.commit,
                actions=actions,
            )
        )

    async def diff(self, request: web.Request) -> web.Response:
        name, spec = self._known(request)
        try:
            found = await self._live.diff(name, spec)
        except LiveReadError as exc:
            body = self._pages.page("diff.html", error=str(exc))
        else:
            body = self._pages.page(
                "diff.html",
                error=None,
                found=found,
                basis=basis(found, spec.branch),
                diffs=diff_lines(found),
            )
        if request.headers.get("X-Fragment") == "1":
            return self._html(body)
        return self._html(
            self._pages.page(
                "diffpage.html", name=name, body=body, **self._common("diff", f"Diff of {name}")
            )
        )

    async def events(self, request: web.Request) -> web.Response:
        delivery = request.query.get("delivery", "")
        records = self._trail.by_delivery(delivery) if delivery else self._trail.records()
        shown = list(reversed(records))[:EVENTS_SHOWN]
        return self._html(
            self._pages.page(
                "events.html",
                records_html=self._pages.event_rows(shown, self._repo_urls()),
                apps=[row.name for row in self._trail.board.rows()],
                delivery=delivery,
                app=request.query.get("app", ""),
                kind=request.query.get("type", ""),
                q=request.query.get("q", ""),
                **self._common("events", "Events"),
            )
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self._static.get(name)
        if body is None:
            raise web.HTTPNotFound()
        suffix = name[name.rfind(".") :]
        return web.Response(
            body=body,
            content_type=_STATIC_TYPES[suffix],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"kafka": self._trail.connected, "caught_up": self._trail.caught_up.is_set()}
        )

    # ------------------------------------------------------------------ live

    async def stream(self, request: web.Request) -> web.StreamResponse:
        after = _int(request.headers.get("Last-Event-ID") or request.query.get("after"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        subscription = self._trail.subscribe()
        try:
            missed = self._trail.records(after) if after is not None else []
            for record in missed:
                await response.write(self._message(record, self._rows_of(record)))
            await response.write(b": connected\n\n")
            iterator = aiter(subscription)
            while True:
                try:
                    record, rows = await asyncio.wait_for(anext(iterator), KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                except StopAsyncIteration:
                    break
                await response.write(self._message(record, rows))
        except ConnectionResetError:
            return response
        finally:
            self._trail.unsubscribe(subscription)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _rows_of(self, record: Record) -> list[AppRow]:
        rows = (self._trail.board.get(app) for app in record.apps)
        return [row for row in rows if row is not None]

    def _message(self, record: Record, rows: list[AppRow]) -> bytes:
        payload = {
            "seq": record.seq,
            "html": self._pages.event_row(record, self._repo_urls()),
            "apps": list(record.apps),
            "kind": record.kind,
            "delivery": record.delivery_id or "",
            "rows": [{"app": row.name, "html": self._pages.app_row(row)} for row in rows],
        }
        return b"id: %d\nevent: record\ndata: %s\n\n" % (record.seq, orjson.dumps(payload))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _last_actions(outcome: Record | None) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, name) → the action of the last outcome that touched the object."""
    if outcome is None or outcome.type not in OUTCOME_TYPES:
        return {}
    found = {}
    for obj in outcome.data.get("objects") or []:
        if isinstance(obj, dict):
            key = (str(obj.get("kind")), str(obj.get("namespace") or ""), str(obj.get("name")))
            found[key] = _action(obj)
    return found


def _action(obj: dict[str, object]) -> str:
    """`configured`, with the sync wave and a hook's phase when the syncer reported them."""
    text = str(obj.get("action"))
    if isinstance(obj.get("wave"), int):
        text += f" · wave {obj['wave']}"
    phase = obj.get("phase")
    if isinstance(phase, str) and phase != "sync":
        text += f" · {phase} hook"
    if obj.get("error"):
        text += f" — {obj['error']}"
    return text


@web.middleware
async def _security_headers(request: web.Request, handler: object) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)  # type: ignore[operator]
    response.headers.update(_SECURITY_HEADERS)
    return response


def build_app(*, config: GitopsConfig, trail: Trail, live: LiveReader) -> web.Application:
    """The aiohttp application; GET only, except the sign-in form when a token is set."""
    views = Views(config=config, trail=trail, live=live)
    middlewares: list[object] = [_security_headers]
    token = config.ui.token.resolve().get_secret_value() if config.ui.token else None
    if token is not None:
        middlewares.append(token_middleware(token, views.login_page))
    app = web.Application(middlewares=middlewares)  # type: ignore[arg-type]
    app.router.add_get("/", views.apps)
    app.router.add_get("/apps/{name}", views.app)
    app.router.add_get("/apps/{name}/objects", views.objects)
    app.router.add_get("/apps/{name}/diff", views.diff)
    app.router.add_get("/events", views.events)
    app.router.add_get("/stream", views.stream)
    app.router.add_get("/static/{name}", views.static)
    app.router.add_get("/healthz", views.healthz)
    if token is not None:
        secret = token

        async def login(request: web.Request) -> web.StreamResponse:
            if request.method == "GET":
                return views._html(views.login_page(False))
            return await sign_in(request, secret, views.login_page)

        app.router.add_route("GET", "/login", login)
        app.router.add_route("POST", "/login", login)
    return app
