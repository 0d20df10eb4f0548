"""The messages of the emulator's HTTP server: requests, responses, streams and errors.

Kept apart from the protocol (:mod:`devcluster.http`) so handlers read as plain code over
small objects: a ``Request`` is fully read before a handler sees it (body included), a
``Response`` is written whole, and a ``StreamResponse`` (watches) writes through the
connection that carried its request.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import Awaitable, Callable, ItemsView
from typing import Protocol, overload
from urllib.parse import parse_qsl

REASONS = {s.value: s.phrase for s in http.HTTPStatus}
_STATUS_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 500: "InternalError"}


class Connection(Protocol):
    """What a stream needs of the connection it writes to."""

    lost: asyncio.Future[None]

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def is_lost(self) -> bool: ...

    def head(
        self, request: Request, status: int, headers: dict[str, str], length: int | None
    ) -> bytes: ...


class HttpError(Exception):
    """A request the server refuses before any handler sees it; the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_body(code: int, message: str) -> bytes:
    """A Kubernetes ``Status`` failure, so clients print a reason rather than raw text."""
    reason = _STATUS_REASONS.get(code) or REASONS.get(code, "Unknown").replace(" ", "")
    doc = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class Headers:
    """Request headers; names compare case-insensitively, repeats are joined with ``", "``."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def items(self) -> ItemsView[str, str]:
        return self._items.items()


class Query:
    """Query parameters, where a name may repeat (``dryRun=All&dryRun=All``)."""

    __slots__ = ("_values",)

    def __init__(self, query_string: str) -> None:
        values: dict[str, list[str]] = {}
        if "%" in query_string or "+" in query_string:
            pairs = parse_qsl(query_string, keep_blank_values=True)
        else:  # nothing to decode: the common case, at a fifth of parse_qsl's cost
            pairs = [(n, v) for n, _, v in (p.partition("=") for p in query_string.split("&") if p)]
        for name, value in pairs:
            values.setdefault(name, []).append(value)
        self._values = values

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[0] if values else default

    def getall(self, name: str, default: list[str] | None = None) -> list[str]:
        values = self._values.get(name)
        if values:
            return list(values)
        return [] if default is None else default

    def __getitem__(self, name: str) -> str:
        return self._values[name][0]

    def __contains__(self, name: object) -> bool:
        return name in self._values


class Request:
    """One parsed request with its whole body."""

    __slots__ = (
        "_connection",
        "_content_type",
        "_query",
        "body",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query_string",
        "version",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str,
        version: str,
        headers: Headers,
        body: bytes,
        keep_alive: bool,
        connection: Connection | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self._query: Query | None = None
        self._content_type: str | None = None
        self._connection = connection

    @property
    def query(self) -> Query:
        if self._query is None:
            self._query = Query(self.query_string)
        return self._query

    @property
    def content_type(self) -> str:
        """The media type without parameters; ``application/octet-stream`` when absent, as
        RFC 9110 says a recipient may assume (and as aiohttp reported it before). Parsed
        once: a write reads it several times."""
        if self._content_type is None:
            raw = self.headers.get("content-type")
            self._content_type = (
                raw.split(";", 1)[0].strip().lower() if raw else "application/octet-stream"
            )
        return self._content_type


class Response:
    """A whole response; the server adds ``Content-Length``, ``Date`` and ``Connection``."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        *,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = dict(headers) if headers else {}
        if content_type is not None:
            self.headers["Content-Type"] = content_type


class StreamResponse:
    """A response written piece by piece (a watch), chunked on HTTP/1.1.

    ``write`` raises ``ConnectionResetError`` once the client is gone, and
    :attr:`disconnected` completes then, so a quiet stream can stop waiting for events.
    The server ends the stream (``write_eof``) when the handler returns it.
    """

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers) if headers else {}
        self._connection: Connection | None = None
        self._chunked = True
        self._eof = False

    @property
    def prepared(self) -> bool:
        return self._connection is not None

    @property
    def disconnected(self) -> asyncio.Future[None]:
        if self._connection is None:
            raise RuntimeError("the stream is not prepared")
        return self._connection.lost

    async def prepare(self, request: Request) -> None:
        connection = request._connection
        if connection is None:
            raise RuntimeError("the request has no connection to stream to")
        self._chunked = request.version == "HTTP/1.1"
        if not self._chunked:
            request.keep_alive = False
        self._connection = connection
        connection.write(connection.head(request, self.status, self.headers, None))

    async def write(self, data: bytes) -> None:
        connection = self._connection
        if connection is None:
            raise RuntimeError("the stream is not prepared")
        if connection.is_lost():
            raise ConnectionResetError("the client closed the connection")
        if not data:
            return
        if self._chunked:
            connection.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            connection.write(data)
        await connection.drain()

    async def write_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        connection = self._connection
        if connection is not None and self._chunked and not connection.is_lost():
            connection.write(b"0\r\n\r\n")


Answer = Response | Awaitable[Response | StreamResponse]
"""What a handler returns: a whole response at once, or an awaitable for one that must wait
(a watch, an injected delay). Most requests take the first way and cost no task."""
Handler = Callable[[Request], Answer]
