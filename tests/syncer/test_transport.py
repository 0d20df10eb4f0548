"""The syncer's lean HTTP/1.1 transport, against real HTTP servers on 127.0.0.1.

The API server answers with Content-Length or chunked bodies and may close idle
keep-alive connections at any time; the transport must read every framing right and
never turn a server-side idle close into a failed sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from syncer.transport import Http1Pool, ProtocolViolation

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.query.get("chunked"):
            response = web.StreamResponse(status=200)
            response.enable_chunked_encoding()
            await response.prepare(request)
            for part in (b'{"parts":', b'["a",', b'"b"]}'):
                await response.write(part)
            await response.write_eof()
            return response
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "auth": request.headers.get("Authorization"),
                "type": request.headers.get("Content-Type"),
                "body": body.decode(),
            },
            status=int(request.query.get("status", "200")),
        )

    runner, url = await _serve(handler)
    yield url
    await runner.cleanup()


async def test_sends_method_path_headers_and_body_and_reads_the_json_answer(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        status, body = await pool.request(
            "PATCH",
            "/api/v1/namespaces/a/configmaps/b?fieldManager=x",
            {"Authorization": "Bearer t", "Content-Type": "application/apply-patch+yaml"},
            b'{"kind":"ConfigMap"}',
            5.0,
        )
    assert status == 200
    assert b'"method": "PATCH"' in body
    assert b'"path": "/api/v1/namespaces/a/configmaps/b?fieldManager=x"' in body
    assert b'"auth": "Bearer t"' in body
    assert b'"body": "{\\"kind\\":\\"ConfigMap\\"}"' in body


async def test_reads_a_chunked_answer_whole(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        status, body = await pool.request("GET", "/x?chunked=1", {}, None, 5.0)
    assert (status, body) == (200, b'{"parts":["a","b"]}')


async def test_error_statuses_come_back_with_their_body(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        status, body = await pool.request("GET", "/x?status=409", {}, None, 5.0)
    assert status == 409
    assert b'"method": "GET"' in body


async def test_many_concurrent_requests_share_a_bounded_pool(echo: str) -> None:
    async with Http1Pool(echo, limit=4) as pool:
        answers = await asyncio.gather(
            *(pool.request("GET", f"/n/{i}", {}, None, 5.0) for i in range(200))
        )
        assert len(pool._all) <= 4
    assert [status for status, _ in answers] == [200] * 200
    assert all(f'"/n/{i}"'.encode() in body for i, (_, body) in enumerate(answers))


async def test_a_connection_the_server_closed_while_idle_is_replaced_silently() -> None:
    """Servers drop idle keep-alive connections (kube-apiserver after its idle timeout)."""
    server_sides: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_sides.append(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            await reader.read()  # until the client closes
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Http1Pool(f"http://127.0.0.1:{port}") as pool:
        assert await pool.request("GET", "/a", {}, None, 5.0) == (200, b"{}")
        server_sides[0].close()  # the idle connection goes away server-side
        await asyncio.sleep(0.05)
        assert await pool.request("GET", "/b", {}, None, 5.0) == (200, b"{}")
    assert len(server_sides) == 2
    server.close()
    await server.wait_closed()


async def test_a_server_that_does_not_answer_times_out() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Http1Pool(f"http://127.0.0.1:{port}") as pool:
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/slow", {}, None, 0.2)
    server.close()
    await server.wait_closed()


async def test_an_answer_that_is_not_http_is_a_connection_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            await writer.drain()
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Http1Pool(f"http://127.0.0.1:{port}") as pool:
        with pytest.raises(ProtocolViolation, match=r"not an HTTP/1\.1 status line"):
            await pool.request("GET", "/", {}, None, 5.0)
    server.close()
    await server.wait_closed()


async def test_close_is_safe_twice_and_refuses_later_requests(echo: str) -> None:
    pool = Http1Pool(echo)
    await pool.request("GET", "/", {}, None, 5.0)
    await pool.close()
    await pool.close()
    with pytest.raises(ConnectionAbortedError):
        await pool.request("GET", "/", {}, None, 5.0)
