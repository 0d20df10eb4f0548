"""Fake third-party APIs at the network boundary, checked against the providers' descriptions.

Each fake is a real aiohttp server on 127.0.0.1. The commit-status fakes load an excerpt
of the provider's own OpenAPI / Swagger description (`tests/notifier/apis/`), route
requests by its paths and validate path parameters and the JSON body with `jsonschema`
against the operation's schema; anything else is answered 404/422 and recorded in
`rejected`, so a test can fail on a request the real provider would refuse. Accepted
requests are recorded in `received` (and, for commit statuses, as the state history of
each commit and context). `script` answers the next requests with given statuses (a 503
storm, a 429 with Retry-After) after validating them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from aiohttp import web
from jsonschema import Draft4Validator, Draft7Validator
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

APIS = Path(__file__).resolve().parents[1] / "notifier" / "apis"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def load_document(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return doc


def _openapi30_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` is `type: [t, "null"]` in JSON Schema; the rest is draft 4."""
    if isinstance(node, list):
        return [_openapi30_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi30_to_jsonschema(v) for k, v in node.items()}
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@dataclass
class Operation:
    """One `method path` of a description, with a validator for its JSON body."""

    method: str
    template: str
    pattern: re.Pattern[str]
    names: list[str]
    body: Validator | None
    body_required: bool


def _base_path(doc: dict[str, Any]) -> str:
    if "basePath" in doc:
        return str(doc["basePath"]).rstrip("/")
    servers = doc.get("servers") or []
    return urlsplit(servers[0]["url"]).path.rstrip("/") if servers else ""


def load_operations(path: Path) -> tuple[str, list[Operation]]:
    """(base path, operations) of an OpenAPI 3.0 or Swagger 2.0 document."""
    doc = _openapi30_to_jsonschema(load_document(path))
    uri = f"urn:fakeapi:{path.name}"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(doc, default_specification=DRAFT4)
    )
    base = _base_path(doc)
    operations = []
    for template, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            names = re.findall(r"{(\w+)}", template)
            regex = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(base + template)) + "$"
            body, required = _body_schema(op, shared)
            validator = None
            if body is not None:
                pointer = _pointer_to(doc, template, method, body)
                validator = Draft4Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)
            operations.append(
                Operation(method.upper(), template, re.compile(regex), names, validator, required)
            )
    return base, operations


def _body_schema(op: dict[str, Any], shared: list[Any]) -> tuple[dict[str, Any] | None, bool]:
    if "requestBody" in op:
        body = op["requestBody"]
        return body["content"]["application/json"]["schema"], bool(body.get("required"))
    for parameter in [*shared, *op.get("parameters", [])]:
        if isinstance(parameter, dict) and parameter.get("in") == "body":
            return parameter["schema"], bool(parameter.get("required"))
    return None, False


def _pointer_to(doc: dict[str, Any], template: str, method: str, schema: Any) -> str:
    """The JSON pointer of the body schema inside the document (so `$ref`s resolve)."""
    escaped = template.replace("~", "~0").replace("/", "~1")
    op = doc["paths"][template][method]
    if "requestBody" in op:
        return f"/paths/{escaped}/{method}/requestBody/content/application~1json/schema"
    for where, params in (
        ("", doc["paths"][template].get("parameters", [])),
        (method, op.get("parameters", [])),
    ):
        for index, parameter in enumerate(params):
            if isinstance(parameter, dict) and parameter.get("schema") is schema:
                prefix = f"/paths/{escaped}" + (f"/{where}" if where else "")
                return f"{prefix}/parameters/{index}/schema"
    raise LookupError(f"body schema of {method} {template} not found")


@dataclass
class Received:
    operation: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]
    at: float
    status: int


@dataclass
class Scripted:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class FakeApi:
    """A fake provider API; `url` is its base (what a rule's `url:` is set to)."""

    def __init__(
        self,
        name: str,
        operations: list[Operation],
        *,
        base: str = "",
        auth: Callable[[dict[str, str]], bool] | None = None,
        success: int = 201,
        success_body: str = "{}",
        url_path: str | None = None,
        mounts: dict[str, Handler] | None = None,
    ) -> None:
        self.name = name
        self.mounts = mounts or {}
        """Path prefix -> handler served beside the described operations (a token exchange)."""
        self.operations = operations
        self.base = base
        self._url_path = base if url_path is None else url_path
        self._auth = auth
        self._success = success
        self._success_body = success_body
        self.received: list[Received] = []
        self.rejected: list[str] = []
        self.script: list[Scripted] = []
        self.delay = 0.0
        """Seconds each answer is held back (a slow provider)."""
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        """What a rule's `url:` is set to: the API base (GitLab's paths carry `/api/v4`)."""
        return f"http://127.0.0.1:{self.port}{self._url_path}"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.raw_path.split("?", 1)[0]
        for prefix, handler in self.mounts.items():
            if path.startswith(prefix):
                return await handler(request)
        raw = await request.read()
        for op in self.operations:
            match = op.pattern.match(path)
            if match and op.method == request.method:
                return await self._answer(op, match, request, raw)
        self.rejected.append(f"{request.method} {path}: no such operation in the description")
        return web.json_response({"message": "Not Found"}, status=404)

    async def _answer(
        self, op: Operation, match: re.Match[str], request: web.Request, raw: bytes
    ) -> web.Response:
        headers = dict(request.headers)
        if self._auth is not None and not self._auth(headers):
            self.rejected.append(f"{op.method} {op.template}: bad or missing credentials")
            return web.json_response({"message": "Bad credentials"}, status=401)
        params = {name: unquote(match.group(name)) for name in op.names}
        body: Any = None
        if op.body is not None:
            if not request.content_type.endswith("json"):
                self.rejected.append(
                    f"{op.method} {op.template}: content type {request.content_type}"
                )
                return web.json_response({"message": "Unsupported Media Type"}, status=415)
            try:
                body = json.loads(raw)
            except ValueError:
                self.rejected.append(f"{op.method} {op.template}: body is not JSON")
                return web.json_response({"message": "Problems parsing JSON"}, status=400)
            errors = sorted(op.body.iter_errors(body), key=lambda e: list(e.path))
            if errors:
                text = "; ".join(
                    f"{'/'.join(map(str, e.path)) or '<body>'}: {e.message}" for e in errors
                )
                self.rejected.append(f"{op.method} {op.template}: {text}")
                return web.json_response(
                    {"message": "Validation Failed", "errors": text}, status=422
                )
        if self.delay:
            await asyncio.sleep(self.delay)
        status, answer_headers, answer = self._success, {}, self._success_body
        if self.script:
            scripted = self.script.pop(0)
            status, answer_headers, answer = scripted.status, scripted.headers, scripted.body
        self.received.append(Received(op.template, params, body, headers, time.time(), status))
        self.arrived.set()
        return web.Response(status=status, text=answer, headers=answer_headers)

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    async def wait_for(
        self, predicate: Callable[[FakeApi], bool], timeout: float = 30.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: no {what or 'expected requests'} in {timeout}s; "
                    f"received {[(r.operation, r.body, r.status) for r in self.received]}, "
                    f"rejected {self.rejected}"
                )
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.2)

    async def __aenter__(self) -> FakeApi:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# ------------------------------------------------------------------ the providers

_STATUS_FILES = {
    "github": ("github.yaml", 201),
    "gitlab": ("gitlab.yaml", 200),
    "gitea": ("gitea.json", 201),
    "bitbucket": ("bitbucket.yaml", 201),
}


def status_api(
    provider: str,
    token: str,
    *,
    tokens: Callable[[], Iterable[str]] | None = None,
    mounts: dict[str, Handler] | None = None,
) -> FakeApi:
    """A commit-status API that accepts `token` the way the provider expects it (or, with
    `tokens`, any of the tokens it returns at the time, e.g. those a fake GitHub minted)."""
    file, success = _STATUS_FILES[provider]
    base, operations = load_operations(APIS / file)
    expected = {
        "github": ("Authorization", f"Bearer {token}"),
        "gitlab": ("PRIVATE-TOKEN", token),
        "gitea": ("Authorization", f"token {token}"),
        "bitbucket": ("Authorization", f"Bearer {token}"),
    }[provider]

    prefix = expected[1].removesuffix(token)

    def auth(headers: dict[str, str]) -> bool:
        given = headers.get(expected[0], "")
        valid = [token] if tokens is None else list(tokens())
        return any(hmac.compare_digest(given, prefix + t) for t in valid)

    url_path = "/api/v4" if provider == "gitlab" else None
    return FakeApi(
        provider,
        operations,
        base=base,
        auth=auth,
        success=success,
        url_path=url_path,
        mounts=mounts,
    )


STATE_FIELD = {"github": "state", "gitlab": "state", "gitea": "state", "bitbucket": "state"}
CONTEXT_FIELD = {"github": "context", "gitlab": "name", "gitea": "context", "bitbucket": "key"}
COMMIT_PARAM = {"github": "sha", "gitlab": "sha", "gitea": "sha", "bitbucket": "commit"}


def states(api: FakeApi, commit: str, context: str) -> list[str]:
    """The states accepted for `commit` and `context`, in the order they arrived."""
    return [
        r.body[STATE_FIELD[api.name]]
        for r in api.accepted()
        if r.params.get(COMMIT_PARAM[api.name]) == commit
        and r.body.get(CONTEXT_FIELD[api.name]) == context
    ]


def _chat_operation(name: str, path: str) -> Operation:
    schemas = load_document(APIS / "chat.yaml")
    return Operation(
        "POST",
        path,
        re.compile("^" + re.escape(path) + "$"),
        [],
        Draft7Validator(schemas[name]),
        True,
    )


def slack_api(path: str = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX") -> FakeApi:
    """An incoming webhook; the rule's `url` is `api.root + path`."""
    return FakeApi("slack", [_chat_operation("slack", path)], success=200, success_body="ok")


def teams_api(path: str = "/workflows/gitops/triggers/manual/paths/invoke") -> FakeApi:
    return FakeApi("msteams", [_chat_operation("msteams", path)], success=202, success_body="")


def event_schema_validator(event_type: str) -> Validator:
    schema = json.loads(
        (
            Path(__file__).resolve().parents[2] / "schemas" / "json" / f"{event_type}.schema.json"
        ).read_text(encoding="utf-8")
    )
    return Draft7Validator(schema)


class WebhookReceiver(FakeApi):
    """Any webhook: checks the CloudEvent against the project's JSON Schema and the HMAC."""

    def __init__(self, secret: str | None = None, path: str = "/hooks/gitops") -> None:
        operation = Operation("POST", path, re.compile("^" + re.escape(path) + "$"), [], None, True)
        super().__init__("webhook", [operation], success=204, success_body="")
        self.secret = secret
        self.path = path

    async def _answer(
        self, op: Operation, match: re.Match[str], request: web.Request, raw: bytes
    ) -> web.Response:
        headers = dict(request.headers)
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(headers.get("X-Gitops-Signature-256", ""), expected):
                self.rejected.append("bad or missing X-Gitops-Signature-256")
                return web.Response(status=401)
        if request.content_type != "application/cloudevents+json":
            self.rejected.append(f"content type {request.content_type}")
            return web.Response(status=415)
        body = json.loads(raw)
        errors = list(event_schema_validator(body.get("type", "?")).iter_errors(body))
        if errors:
            self.rejected.append("; ".join(e.message for e in errors))
            return web.Response(status=422)
        status = self._success
        if self.script:
            status = self.script.pop(0).status
        self.received.append(Received(op.template, {}, body, headers, time.time(), status))
        self.arrived.set()
        return web.Response(status=status)
