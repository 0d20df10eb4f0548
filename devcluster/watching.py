"""Watch streams: ``?watch=true`` answered as newline-delimited JSON watch events.

Semantics from api-concepts.md#efficient-detection-of-changes: without a resourceVersion
(or with ``0``) the stream starts with a synthetic ADDED per existing object; with one it
replays every change after it from the history, or sends an ERROR event carrying a 410
``Expired`` Status when the history no longer reaches back (the client must re-list).
Selectors apply to both old and new state, so an object that stops matching arrives as
DELETED and one that starts matching as ADDED. ``allowWatchBookmarks`` adds periodic
BOOKMARK events; ``sendInitialEvents`` ends the initial burst with the
``k8s.io/initial-events-end`` bookmark. A stream ends after ``timeoutSeconds``, when the
cluster stops, or as soon as the client hangs up (so a quiet watch does not hold its
subscription until the timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devcluster.resources import ResourceType
from devcluster.selectors import FieldSelector, LabelSelector
from devcluster.status import ApiError
from devcluster.store import Event, Store, Stored, encode

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class WatchRequest:
    rt: ResourceType
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    resource_version: str
    timeout: float
    bookmarks: bool
    initial_events: bool | None


def _line(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


class WatchStream:
    """One client's watch: filters store events and writes them to the response."""

    def __init__(self, store: Store, req: WatchRequest, bookmark_interval: float) -> None:
        self._store = store
        self._req = req
        self._bookmark_interval = bookmark_interval

    def _matches(self, obj: JsonObj | None) -> bool:
        if obj is None:
            return False
        metadata = obj["metadata"]
        if self._req.namespace is not None and metadata.get("namespace") != self._req.namespace:
            return False
        return self._req.labels.matches(metadata.get("labels")) and self._req.fields.matches(
            metadata
        )

    def _translate(self, event: Event) -> bytes | None:
        now = self._matches(event.current.obj)
        before = self._matches(event.old)
        if event.type == "DELETED":
            return _line("DELETED", event.current.raw) if before else None
        if event.type == "ADDED":
            return _line("ADDED", event.current.raw) if now else None
        if now and before:
            return _line("MODIFIED", event.current.raw)
        if now:
            return _line("ADDED", event.current.raw)
        if before:
            return _line("DELETED", event.current.raw)
        return None

    def _bookmark(self, rv: int, initial_end: bool = False) -> bytes:
        metadata: JsonObj = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _line(
            "BOOKMARK",
            encode(
                {
                    "kind": self._req.rt.kind,
                    "apiVersion": self._req.rt.api_version,
                    "metadata": metadata,
                }
            ),
        )

    def _initial(self, items: Iterable[Stored]) -> list[bytes]:
        return [_line("ADDED", s.raw) for s in items if self._matches(s.obj)]

    async def run(self, request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        rt = self._req.rt
        resource = (rt.group, rt.plural)
        queue = self._store.subscribe()
        try:
            first: list[bytes] = []
            last_rv = self._store.resource_version
            rv_text = self._req.resource_version
            error: ApiError | None = None
            if self._req.initial_events or rv_text in ("", "0"):
                first = self._initial(self._store.objects(resource, self._req.namespace))
                if self._req.initial_events and self._req.bookmarks:
                    first.append(self._bookmark(last_rv, initial_end=True))
            else:
                try:
                    since = int(rv_text)
                except ValueError:
                    since = -1
                if since < 0:
                    error = ApiError(410, "Expired", f"invalid resource version {rv_text!r}")
                else:
                    try:
                        events = self._store.events_since(since, resource)
                    except ApiError as exc:
                        error = exc
                    else:
                        first = [b for b in (self._translate(e) for e in events) if b]
            response = web.StreamResponse(
                headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
            if error is not None:
                await response.write(_line("ERROR", encode(error.to_status())))
                return response
            if first:
                await response.write(b"".join(first))
            await self._follow(response, queue, resource, last_rv, closing)
            return response
        finally:
            self._store.unsubscribe(queue)

    async def _follow(
        self,
        response: web.StreamResponse,
        queue: asyncio.Queue[Event],
        resource: tuple[str, str],
        last_rv: int,
        closing: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._req.timeout
        closed = asyncio.ensure_future(closing.wait())
        getter: asyncio.Future[Event] | None = None
        try:
            while not closing.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                wait = min(remaining, self._bookmark_interval) if self._req.bookmarks else remaining
                getter = asyncio.ensure_future(queue.get())
                waiters: set[asyncio.Future[Any]] = {getter, closed}
                done, _ = await asyncio.wait(
                    waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if self._req.bookmarks and not closing.is_set():
                        await response.write(self._bookmark(self._store.resource_version))
                    continue
                chunks = []
                events = [getter.result()]
                while not queue.empty():
                    events.append(queue.get_nowait())
                for event in events:
                    if event.rv <= last_rv or event.resource != resource:
                        continue
                    line = self._translate(event)
                    if line:
                        chunks.append(line)
                if chunks:
                    await response.write(b"".join(chunks))
        except ConnectionResetError:
            return
        finally:
            # Also when the handler is cancelled (the client hung up) mid-wait.
            closed.cancel()
            if getter is not None:
                getter.cancel()
