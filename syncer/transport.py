"""A lean HTTP/1.1 keep-alive transport for the Kubernetes API's request/response calls.

Why not aiohttp here: a sync writes every object twice (dry run, then apply), so a
1,000-object app is 2,000 small requests, and aiohttp's client builds URL objects, header
multidicts, payload writers, response streams and signal hooks for each. Where the syncer
shares cores with the API server it waits for, that CPU is taken from the server. This
transport keeps a pool of plain connections (TLS from the same kubeconfig settings),
writes one pre-built request per connection at a time and parses the answer in
`data_received`: only what a JSON API call needs. It is the syncer's only path to API
servers; `docs/performance.md` has the measurement on a real kube-apiserver that kept it.

Scope on purpose: one request in flight per connection, `Content-Length` or `chunked`
answers (or read-until-close), no compression (we never ask for it), no redirects. An
`http://` proxy (a kubeconfig's `proxy-url`) is supported as kubectl uses one: a `CONNECT`
tunnel for an `https` API server, absolute-form requests for a plain `http` one, with
`Proxy-Authorization` from the proxy URL's user info. A pooled connection that the server
closed while idle is detected on use and the request is sent once more on a fresh one;
every other failure surfaces as an `OSError` (or `TimeoutError`) for the caller's retry
policy.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections import deque
from types import TracebackType
from typing import Self, cast
from urllib.parse import unquote, urlsplit

_MAX_HEAD = 64 * 1024
_CLOSE_TIMEOUT = 1.0
"""Seconds `close()` waits for connections to finish closing before aborting them."""


class ProtocolViolation(ConnectionError):
    """The server's answer was not HTTP/1.1 we can read (a proxy or a non-API port?)."""


class ProxyRefused(ConnectionError):
    """The proxy did not open a tunnel to the API server (its status line says why)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `send` writes a request and resolves with the answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        self.lost = asyncio.get_running_loop().create_future()
        """Resolves once the transport is gone (a TLS close takes a few loop rounds)."""
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._head_end = -1
        self._status = 0
        self._length = -1
        self._chunked = False
        self._keep_alive = True
        self.retry_after: float | None = None
        """The last answer's `Retry-After` in seconds, when it gave one as a number."""
        self._head_only = False

    # ---------------------------------------------------------- protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is not None:
            try:
                self._parse()
            except ProtocolViolation as exc:
                self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head_end >= 0 and self._length < 0 and not self._chunked:
            # No length, no chunks: the body ends with the connection.
            self._waiter = None
            waiter.set_result((self._status, bytes(self._buf[self._head_end :]), False))
            return
        self._waiter = None
        waiter.set_exception(
            ConnectionResetError(
                "the API server closed the connection"
                + (" mid-answer" if self._buf else " before answering")
            )
        )

    # ------------------------------------------------------------------- use
    def send(
        self, request: bytes, *, head_only: bool = False
    ) -> asyncio.Future[tuple[int, bytes, bool]]:
        """Write `request`; the future resolves to (status, body, connection reusable).

        `head_only`: the answer has no body whatever its headers say (`CONNECT`)."""
        assert self.transport is not None  # noqa: S101 - connected before use
        self.used = True
        self._buf.clear()
        self._head_end = -1
        self._length = -1
        self._chunked = False
        self.retry_after = None
        self._head_only = head_only
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    @property
    def received_anything(self) -> bool:
        return bool(self._buf)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionAbortedError("connection closed"))
        self._waiter = None

    # --------------------------------------------------------------- parsing
    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def _parse(self) -> None:
        buf = self._buf
        if self._head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ProtocolViolation("response headers too large")
                return
            self._read_head(bytes(buf[:end]).decode("latin-1"))
            self._head_end = end + 4
            if self._head_only:
                self._length, self._chunked = 0, False
            if 100 <= self._status < 200:  # an interim answer: the real one follows
                del buf[: self._head_end]
                self._head_end = -1
                self._parse()
                return
        if self._chunked:
            body = self._dechunk()
            if body is None:
                return
        elif self._length >= 0:
            if len(buf) - self._head_end < self._length:
                return
            body = bytes(buf[self._head_end : self._head_end + self._length])
        else:
            return  # read until the server closes (connection_lost)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body, self._keep_alive))

    def _read_head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolViolation(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
        self._status = int(parts[1])
        self._keep_alive = parts[0] != "HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                try:
                    self._length = int(value)
                except ValueError:
                    raise ProtocolViolation(f"bad Content-Length {value!r}") from None
            elif name == "transfer-encoding":
                self._chunked = "chunked" in value.lower()
            elif name == "connection":
                self._keep_alive = value.strip().lower() != "close"
            elif name == "retry-after":
                self.retry_after = _seconds(value)
        if self._status in (204, 304) or self._status < 200:
            self._length = 0

    def _dechunk(self) -> bytes | None:
        buf, pos, out = self._buf, self._head_end, bytearray()
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolViolation(f"bad chunk size {size_text[:20]!r}") from None
            start = line_end + 2
            if size == 0:
                # Trailers (rare) end with an empty line.
                if buf.find(b"\r\n", start) < 0:
                    return None
                return bytes(out)
            if len(buf) < start + size + 2:
                return None
            out += buf[start : start + size]
            pos = start + size + 2


class Http1Pool:
    """Keep-alive connections to one API server, at most `limit` at once.

    An async context manager; `close()` is safe to call twice.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        limit: int = 64,
        proxy: str | None = None,
        proxy_headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) API server URL: {url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self.prefix = parts.path.rstrip("/")
        """A path the server's URL carries (API servers behind a path-routing proxy)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        default = 443 if self._tls else 80
        self._host_header = host if self._port == default else f"{host}:{self._port}"
        self._authority = f"{host}:{self._port}"
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None
        self._server_hostname = (server_hostname or self._host) if self._tls else None
        self._proxy: tuple[str, int] | None = None
        self._proxy_headers = dict(proxy_headers or {})
        if proxy:
            via = urlsplit(proxy)
            if via.scheme != "http" or not via.hostname:
                raise ValueError(
                    f"proxy {via.scheme}://{via.hostname or ''} is not supported "
                    "(an http:// proxy is)"
                )
            self._proxy = (via.hostname, via.port or 80)
            if via.username is not None:
                user = f"{unquote(via.username)}:{unquote(via.password or '')}"
                self._proxy_headers.setdefault(
                    "Proxy-Authorization", "Basic " + base64.b64encode(user.encode()).decode()
                )
        # A plain-http API server behind a proxy: absolute-form targets, the proxy's headers.
        self._forward = self._proxy is not None and not self._tls
        self._slots = asyncio.Semaphore(limit)
        self._idle: deque[_Connection] = deque()
        self._all: set[_Connection] = set()
        self._closing: set[_Connection] = set()
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
    ) -> tuple[int, bytes, float | None]:
        """Send one request; (status, body, Retry-After seconds). Raises OSError/TimeoutError."""
        if self._closed:
            raise ConnectionAbortedError("the connection pool is closed")
        origin = f"http://{self._host_header}" if self._forward else ""
        lines = [f"{method} {origin}{self.prefix}{target} HTTP/1.1", f"Host: {self._host_header}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if self._forward:
            lines.extend(f"{k}: {v}" for k, v in self._proxy_headers.items())
        lines.append(f"Content-Length: {len(body) if body is not None else 0}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if body:
            raw += body
        async with self._slots, asyncio.timeout(timeout):
            for _ in range(2):
                conn = await self._acquire()
                reused = conn.used
                try:
                    status, answer, keep = await conn.send(raw)
                    retry_after = conn.retry_after
                except ConnectionError:
                    self._drop(conn)
                    if reused and not conn.received_anything:
                        continue  # the server closed it while idle: once more, fresh
                    raise
                except BaseException:
                    self._drop(conn)
                    raise
                if keep and not conn.closed:
                    self._idle.append(conn)
                else:
                    self._drop(conn)
                return status, answer, retry_after
        raise ConnectionResetError("the API server closed two connections in a row")

    async def _acquire(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._all.discard(conn)
        loop = asyncio.get_running_loop()
        if self._proxy is None:
            _, conn = await loop.create_connection(
                _Connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._server_hostname,
            )
        else:
            _, conn = await loop.create_connection(_Connection, *self._proxy)
            try:
                if self._tls:
                    await self._tunnel(loop, conn)
            except BaseException:
                conn.close()
                raise
        self._all.add(conn)
        return conn

    async def _tunnel(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        """`CONNECT` through the proxy, then TLS with the API server inside the tunnel."""
        authority = self._authority
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines.extend(f"{k}: {v}" for k, v in self._proxy_headers.items())
        status, _, _ = await conn.send(
            ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), head_only=True
        )
        if status != 200:
            raise ProxyRefused(f"the proxy answered {status} to CONNECT {authority}")
        assert conn.transport is not None  # noqa: S101 - connected above
        assert self._ssl is not None  # noqa: S101 - a tunnel is for https API servers only
        secure = await loop.start_tls(
            conn.transport, conn, self._ssl, server_hostname=self._server_hostname
        )
        if secure is None:  # pragma: no cover - only when the transport closed meanwhile
            raise ConnectionResetError("the proxy closed the tunnel during the TLS handshake")
        conn.transport = secure
        conn.used = False

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._all.discard(conn)
        if not conn.lost.done():  # still closing: `close()` waits for it too
            self._closing.add(conn)
            conn.lost.add_done_callback(lambda _: self._closing.discard(conn))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conns = [*self._all, *self._closing]
        for conn in conns:
            conn.close()
        self._all.clear()
        self._idle.clear()
        # TLS transports close after their close_notify: wait for that (briefly), so no
        # socket outlives the pool or the event loop it ran on.
        pending = [conn.lost for conn in conns if not conn.lost.done()]
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_TIMEOUT)
        for conn in conns:
            if not conn.lost.done() and conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)  # let aborted transports run their close callbacks

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _seconds(value: str) -> float | None:
    """A `Retry-After` given in seconds; the HTTP-date form (no API server sends it) is None."""
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
