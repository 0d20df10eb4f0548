"""The emulator's HTTP/1.1 server: one ``asyncio.Protocol`` per connection.

Why not aiohttp: on a 2-core machine aiohttp's server costs ~55-70 µs of CPU per small
request (on uvloop), a plain ``asyncio.Protocol`` server ~20 µs. A 1,000-object sync is
~2,000 small PATCHes to the emulator, and that overhead was a third of its CPU, all of it
spent on features the emulator never uses (middlewares, signals, multipart, cookies,
URL dispatch with patterns, access logs).

The scope is deliberately what our clients (kubectl, kubernetes_asyncio, the syncer's
transport, aiohttp in tests) send to a local apiserver over plain TCP: HTTP/1.1 and 1.0,
keep-alive, pipelined requests answered strictly in order (one handler at a time per
connection), ``Content-Length`` and ``chunked`` request bodies read whole (bounded),
``Expect: 100-continue``, whole responses with ``Content-Length`` and chunked streaming
responses for watches. No TLS, HTTP/2, upgrades, trailers or compression. Abuse is bounded,
not tolerated: oversized heads get 431, oversized bodies 413, garbage 400, each followed by
closing the connection; idle and stalled connections are closed by a periodic sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from collections.abc import Awaitable
from typing import cast
from urllib.parse import unquote

from devcluster.httpmessages import (
    REASONS,
    Handler,
    Headers,
    HttpError,
    Request,
    Response,
    StreamResponse,
    status_body,
)

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_PAUSE_BUFFER = 1024 * 1024
_COALESCE_BYTES = 256 * 1024


class _Head:
    """A parsed request head, waiting for its body."""

    __slots__ = (
        "chunked",
        "continued",
        "expect_continue",
        "headers",
        "keep_alive",
        "length",
        "method",
        "path",
        "query_string",
        "version",
    )

    def __init__(self, block: bytes, max_body: int) -> None:
        lines = block.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        if method not in _METHODS:
            raise HttpError(400, f"unsupported method {method[:32]!r}")
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            if version.startswith("HTTP/") and len(version) == 8:
                raise HttpError(505, f"unsupported protocol version {version}")
            raise HttpError(400, "malformed request line")
        if not target.startswith("/"):
            if target.startswith(("http://", "https://")):
                slash = target.find("/", target.find("//") + 2)
                target = target[slash:] if slash > 0 else "/"
            elif not (target == "*" and method == "OPTIONS"):
                raise HttpError(400, "malformed request target")
        raw_path, _, query_string = target.partition("?")
        raw_path = raw_path.partition("#")[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name[-1] in " \t" or name[0] in " \t":
                raise HttpError(400, "malformed header line")
            if "\n" in line or "\x00" in line:
                raise HttpError(400, "invalid character in header")
            name = name.lower()
            value = value.strip(" \t")
            previous = headers.get(name)
            headers[name] = value if previous is None else f"{previous}, {value}"
        self.method = method
        self.path = unquote(raw_path) if "%" in raw_path else raw_path
        self.query_string = query_string
        self.version = version
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        self.expect_continue = (
            version == "HTTP/1.1" and headers.get("expect", "").lower() == "100-continue"
        )
        self.continued = False
        self.chunked: _Chunked | None = None
        self.length = 0
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if encoding is not None:
            if length is not None:
                raise HttpError(400, "both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for c in encoding.split(",")]
            if codings[-1] != "chunked":
                raise HttpError(400, f"unsupported Transfer-Encoding {encoding!r}")
            if len(codings) > 1:
                raise HttpError(501, f"unsupported Transfer-Encoding {encoding!r}")
            self.chunked = _Chunked()
        elif length is not None:
            values = {v.strip() for v in length.split(",")}
            value = values.pop()
            if values or not (value.isascii() and value.isdigit()):
                raise HttpError(400, f"invalid Content-Length {length!r}")
            self.length = int(value)
            if self.length > max_body:
                raise HttpError(413, f"the request body is larger than {max_body} bytes")


class _Chunked:
    """Incremental decoder of a chunked request body (trailers are read and dropped)."""

    __slots__ = ("body", "remaining", "state")

    SIZE, DATA, CRLF, TRAILER = range(4)

    def __init__(self) -> None:
        self.body = bytearray()
        self.remaining = 0
        self.state = self.SIZE

    def feed(self, buf: bytearray, max_body: int) -> tuple[int, bool]:
        """Decode what ``buf`` holds; returns (bytes consumed, body complete)."""
        pos = 0
        end = len(buf)
        while True:
            if self.state == self.SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > 1024:
                        raise HttpError(400, "chunk size line too long")
                    return pos, False
                size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
                if not size_text or not _HEXDIGITS.issuperset(size_text):
                    raise HttpError(400, "malformed chunk size")
                size = int(size_text, 16)
                pos = eol + 2
                if size == 0:
                    self.state = self.TRAILER
                    continue
                if len(self.body) + size > max_body:
                    raise HttpError(413, f"the request body is larger than {max_body} bytes")
                self.remaining = size
                self.state = self.DATA
            elif self.state == self.DATA:
                take = min(self.remaining, end - pos)
                if take == 0:
                    return pos, False
                self.body += buf[pos : pos + take]
                pos += take
                self.remaining -= take
                if self.remaining:
                    return pos, False
                self.state = self.CRLF
            elif self.state == self.CRLF:
                if end - pos < 2:
                    return pos, False
                if buf[pos : pos + 2] != b"\r\n":
                    raise HttpError(400, "malformed chunk")
                pos += 2
                self.state = self.SIZE
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > MAX_HEADER_BYTES:
                        raise HttpError(431, "trailers too large")
                    return pos, False
                blank = eol == pos
                pos = eol + 2
                if blank:
                    return pos, True


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and runs their handler one at a time."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._streaming = False
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._rejected = False
        self._peer_eof = False
        self.task: asyncio.Task[None] | None = None
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self.last_seen = self._loop.time()
        self.request_started: float | None = None

    # ------------------------------------------------------------ transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._server.connections.add(self)
        if self._server.closing:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._closed = True
        self._server.forget(self)
        self._buffer.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client closed the connection"))

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        self.last_seen = self._loop.time()
        if self.request_started is None:
            self.request_started = self.last_seen
        self._buffer += data
        if self.task is None:
            self._advance()
        elif len(self._buffer) > _PAUSE_BUFFER and not self._reading_paused:
            self._reading_paused = True
            if self._transport is not None:
                self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        """A client may half-close after its last request: answer what is in flight, then
        close (returning True keeps our side open until then). A stream has nothing left
        to answer: the client has gone, and closing tells the watch so."""
        self._peer_eof = True
        return True if self.task is not None and not self._streaming else None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ writing
    def is_lost(self) -> bool:
        return self._closed

    def write(self, data: bytes) -> None:
        if not self._closed and self._transport is not None:
            self._transport.write(data)

    async def drain(self) -> None:
        if self._closed:
            raise ConnectionResetError("the client closed the connection")
        if not self._writing_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await self._drain_waiter

    def head(
        self,
        request: Request,
        status: int,
        headers: dict[str, str],
        length: int | None,
    ) -> bytes:
        """The status line and headers; ``length`` None starts a stream, chunked unless
        the client speaks HTTP/1.0 (then the end of the stream is the close)."""
        keep_alive = request.keep_alive and not self._server.closing
        request.keep_alive = keep_alive
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if length is not None:
            lines.append(f"Content-Length: {length}\r\n")
        else:
            if request.version == "HTTP/1.1":
                lines.append("Transfer-Encoding: chunked\r\n")
            self._streaming = True
            if self._peer_eof:
                self.close()
        lines.append(f"Date: {self._server.date()}\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif request.version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _write_response(self, request: Request, response: Response) -> None:
        """One write (one send) for head and body unless the body is large."""
        body = response.body
        head = self.head(request, response.status, response.headers, len(body))
        if request.method == "HEAD" or not body:
            self.write(head)
        elif len(body) <= _COALESCE_BYTES:
            self.write(head + body)
        else:
            self.write(head)
            self.write(body)

    # ------------------------------------------------------------------ parsing
    def _advance(self) -> None:
        """Parse the next request from the buffer and start its handler."""
        buf = self._buffer
        max_body = self._server.max_body_bytes
        while self.task is None and self._transport is not None:
            head = self._head
            if head is None:
                while buf.startswith(b"\r\n"):
                    del buf[:2]
                if not buf:
                    self.request_started = None
                    return
                end = buf.find(b"\r\n\r\n")
                if end < 0 or end > self._server.max_header_bytes:
                    if end >= 0 or len(buf) > self._server.max_header_bytes:
                        self._reject(431, "the request head is too large")
                    return
                try:
                    head = _Head(bytes(buf[:end]), max_body)
                except HttpError as error:
                    self._reject(error.status, error.message)
                    return
                del buf[: end + 4]
                self._head = head
            if head.chunked is not None:
                try:
                    consumed, done = head.chunked.feed(buf, max_body)
                except HttpError as error:
                    self._reject(error.status, error.message)
                    return
                del buf[:consumed]
                if not done:
                    self._continue(head)
                    return
                body = bytes(head.chunked.body)
            elif head.length:
                if len(buf) < head.length:
                    self._continue(head)
                    return
                body = bytes(buf[: head.length])
                del buf[: head.length]
            else:
                body = b""
            self._head = None
            request = Request(
                head.method,
                head.path,
                head.query_string,
                head.version,
                Headers(head.headers),
                body,
                head.keep_alive,
                self,
            )
            try:
                answer = self._server.handler(request)
            except Exception as exc:
                log.exception("%s %s failed", request.method, request.path)
                answer = self._failure(exc)
            if isinstance(answer, Response):
                self._write_response(request, answer)
                if not self._answered(request):
                    return
                continue
            self.task = self._loop.create_task(self._respond(request, answer))

    def _continue(self, head: _Head) -> None:
        if head.expect_continue and not head.continued:
            head.continued = True
            self.write(_CONTINUE)

    def _reject(self, status: int, message: str) -> None:
        """Answer ``status`` and close. Our side is shut first and what the client still
        sends is read and dropped for a moment: closing with unread input makes the kernel
        reset the connection, and the client could lose the answer."""
        body = status_body(status, message)
        request = Request("GET", "", "", "HTTP/1.1", Headers({}), b"", keep_alive=False)
        self._write_response(request, Response(body, status, content_type="application/json"))
        self._buffer.clear()
        self._head = None
        self._rejected = True
        transport = self._transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
            self._closed = True
            self._loop.call_later(1.0, transport.close)
        else:
            self.close()

    # ----------------------------------------------------------------- handling
    @staticmethod
    def _failure(exc: Exception) -> Response:
        """A handler's bug, answered as the apiserver answers its own: 500 InternalError."""
        message = f"Internal error occurred: {type(exc).__name__}: {exc}"
        return Response(status_body(500, message), 500, content_type="application/json")

    def _answered(self, request: Request) -> bool:
        """Bookkeeping once an answer is written; False when the connection is done."""
        self.last_seen = self._loop.time()
        if not request.keep_alive or self._server.closing:
            self.close()
            return False
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        self.request_started = self.last_seen if self._buffer else None
        return True

    async def _respond(
        self, request: Request, pending: Awaitable[Response | StreamResponse]
    ) -> None:
        try:
            try:
                response = await pending
            except ConnectionResetError:
                raise
            except Exception as exc:
                log.exception("%s %s failed", request.method, request.path)
                if self._streaming:
                    self.close()
                    return
                response = self._failure(exc)
            if isinstance(response, StreamResponse):
                if not response.prepared:
                    await response.prepare(request)
                await response.write_eof()
            else:
                self._write_response(request, response)
        except ConnectionResetError:
            self.close()
            return
        finally:
            self.task = None
            self._streaming = False
        if not self._answered(request):
            return
        self._advance()
        if self._peer_eof and self.task is None:
            self.close()

    def close(self) -> None:
        """Close once what is written has been sent."""
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self._closed = True
        if self.task is not None:
            self.task.cancel()
        if self._transport is not None:
            self._transport.abort()


class HttpServer:
    """Serves one handler on a TCP socket; :meth:`close` ends every connection."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
        idle_timeout: float = 75.0,
        request_timeout: float = 60.0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.handler = handler
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.shutdown_timeout = shutdown_timeout
        self.connections: set[_Connection] = set()
        self.closing = False
        self.loop: asyncio.AbstractEventLoop
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed = asyncio.Event()
        self._date_second = -1
        self._date = ""

    def date(self) -> str:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = email.utils.formatdate(now, usegmt=True)
        return self._date

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` and return the bound port (``0`` picks a free one)."""
        self.loop = asyncio.get_running_loop()
        self.closing = False
        self._server = await self.loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True
        )
        self._sweeper = self.loop.call_later(self._sweep_interval(), self._sweep)
        return int(self._server.sockets[0].getsockname()[1])

    def forget(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if self.closing and not self.connections:
            self._all_closed.set()

    def _sweep_interval(self) -> float:
        return max(0.05, min(self.idle_timeout, self.request_timeout) / 4)

    def _sweep(self) -> None:
        """Close connections idle past ``idle_timeout`` or stuck mid-request past
        ``request_timeout`` (a client that dribbles a request never finishing it)."""
        now = self.loop.time()
        for connection in list(self.connections):
            if connection.task is not None:
                continue
            started = connection.request_started
            stalled = started is not None and now - started > self.request_timeout
            idle = started is None and now - connection.last_seen > self.idle_timeout
            if stalled or idle:
                connection.close()
        self._sweeper = self.loop.call_later(self._sweep_interval(), self._sweep)

    async def close(self) -> None:
        """Stop listening, close idle connections, give running handlers
        ``shutdown_timeout`` to finish, then cancel them. Safe to repeat."""
        server, self._server = self._server, None
        if server is None:
            return
        self.closing = True
        self._all_closed.clear()
        server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self.connections):
            if connection.task is None:
                connection.close()
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.shutdown_timeout)
        tasks = [c.task for c in self.connections if c.task is not None]
        for connection in list(self.connections):
            if connection.task is None:
                connection.close()
            else:
                connection.abort()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), self.shutdown_timeout)
        for connection in list(self.connections):
            connection.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), self.shutdown_timeout)
