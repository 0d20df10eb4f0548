"""The emulator's HTTP layer (aiohttp) as a client on a raw socket sees it: keep-alive,
request framing, pipelining, limits, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from devcluster import DevCluster
from tests.devcluster.conftest import emulator_only

pytestmark = emulator_only(
    "the emulator's own HTTP layer over raw plain-HTTP sockets (kube-apiserver serves TLS)"
)

CM_PATH = "/api/v1/namespaces/default/configmaps"


class Conn:
    """One raw client connection that reads responses the way an HTTP client does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status_line = await asyncio.wait_for(self.reader.readline(), 5)
        assert status_line, "connection closed before a response"
        status = int(status_line.split(b" ")[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        if head_only:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            return status, headers, await self.chunked()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def chunked(self) -> bytes:
        body = b""
        while True:
            size = int((await asyncio.wait_for(self.reader.readline(), 5)).strip(), 16)
            if size == 0:
                assert await self.reader.readline() == b"\r\n"
                return body
            body += await self.reader.readexactly(size)
            assert await self.reader.readexactly(2) == b"\r\n"

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: devcluster", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def conn(devcluster: DevCluster) -> AsyncIterator[Conn]:
    connection = await Conn.open(devcluster.port)
    yield connection
    await connection.close()


async def test_keep_alive_serves_many_requests_on_one_connection(conn: Conn) -> None:
    for _ in range(3):
        conn.send(request("GET", "/api/v1/namespaces/default"))
        status, headers, body = await conn.response()
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["metadata"]["name"] == "default"
        assert "connection" not in headers
    conn.send(request("GET", "/healthz", "Connection: close"))
    status, headers, body = await conn.response()
    assert (status, body, headers["connection"]) == (200, b"ok", "close")
    assert await conn.closed()


async def test_http10_request_is_answered_and_closed(conn: Conn) -> None:
    conn.send(b"GET /version HTTP/1.0\r\n\r\n")
    status, _, body = await conn.response()
    assert status == 200
    assert json.loads(body)["major"] == "1"
    assert await conn.closed()


async def test_http10_watch_streams_until_close(conn: Conn) -> None:
    """HTTP/1.0 has no chunked encoding: the stream is the body and ends with the close
    (the one event: the namespace's kube-root-ca.crt ConfigMap, ADDED)."""
    conn.send(f"GET {CM_PATH}?watch=true&timeoutSeconds=0.2 HTTP/1.0\r\n\r\n".encode())
    status, headers, _ = await conn.response(head_only=True)
    assert status == 200
    assert "transfer-encoding" not in headers
    assert headers.get("connection", "close") == "close"
    events = (await asyncio.wait_for(conn.reader.read(), 5)).splitlines()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in map(json.loads, events)] == [
        ("ADDED", "kube-root-ca.crt")
    ]


async def test_chunked_request_body(conn: Conn, devcluster: DevCluster) -> None:
    """A chunked body split across writes, with a chunk extension and a trailer."""
    payload = json.dumps({"metadata": {"name": "chunky"}, "data": {"k": "v" * 100}}).encode()
    conn.send(
        request("POST", CM_PATH, "Content-Type: application/json", "Transfer-Encoding: chunked")
    )
    conn.send(b"%x;ext=1\r\n%b\r\n" % (10, payload[:10]))
    await conn.writer.drain()
    await asyncio.sleep(0.05)
    rest = payload[10:]
    conn.send(b"%X\r\n%b\r\n0\r\nX-Trailer: yes\r\n\r\n" % (len(rest), rest))
    status, _, body = await conn.response()
    assert status == 201, body
    stored = devcluster.store.get(("", "configmaps"), "default", "chunky")
    assert stored is not None
    assert stored.obj["data"] == {"k": "v" * 100}


async def test_malformed_chunk_is_400_and_closes(conn: Conn, devcluster: DevCluster) -> None:
    """A broken chunked body is refused (aiohttp's plain-text 400, as Go's net/http answers
    for kube-apiserver) and nothing is created."""
    conn.send(
        request("POST", CM_PATH, "Content-Type: application/json", "Transfer-Encoding: chunked")
        + b"zz\r\n"
    )
    status, _, _ = await conn.response()
    assert status == 400
    assert await conn.closed()
    assert [stored.name for stored in devcluster.store.objects(("", "configmaps"), "default")] == [
        "kube-root-ca.crt"
    ]


async def test_expect_100_continue(conn: Conn) -> None:
    payload = json.dumps({"metadata": {"name": "patient"}}).encode()
    conn.send(
        request(
            "POST",
            CM_PATH,
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            "Expect: 100-continue",
        )
    )
    assert await asyncio.wait_for(conn.reader.readline(), 5) == b"HTTP/1.1 100 Continue\r\n"
    assert await conn.reader.readline() == b"\r\n"
    conn.send(payload)
    status, _, _ = await conn.response()
    assert status == 201


async def test_pipelined_requests_are_answered_in_order(conn: Conn, devcluster: DevCluster) -> None:
    """The first request stalls (an injected delay); the ones sent behind it on the same
    connection are still answered after it, in the order sent."""
    devcluster.faults.add("get", "namespaces", code=0, delay=0.3)
    conn.send(
        request("GET", "/api/v1/namespaces/default")
        + request("GET", "/api/v1/namespaces/missing")
        + request("HEAD", "/version")
        + request("GET", "/healthz")
    )
    first = await conn.response()
    second = await conn.response()
    third = await conn.response(head_only=True)
    fourth = await conn.response()
    assert json.loads(first[2])["metadata"]["name"] == "default"
    assert second[0] == 404
    assert third[0] == 200
    assert int(third[1]["content-length"]) > 0
    assert fourth[:1] + fourth[2:] == (200, b"ok")


async def test_head_and_unknown_methods(conn: Conn) -> None:
    """HEAD is answered without a body where GET is routed, and is a 405 on resources
    (as kube-apiserver); a GET-only path takes no POST (the catch-all 404); a method
    outside HTTP's standard set is a 400 that closes the connection."""
    conn.send(request("HEAD", "/api/v1/namespaces"))
    status, headers, _ = await conn.response(head_only=True)
    assert status == 405
    assert int(headers["content-length"]) > 0
    conn.send(request("POST", "/version", body=b"{}"))
    status, _, body = await conn.response()
    assert status == 404
    assert json.loads(body)["reason"] == "NotFound"
    conn.send(request("BREW", "/version"))
    status, _, _ = await conn.response()
    assert status == 400
    assert await conn.closed()


@pytest.mark.parametrize("line", [b"garbage", b"GET version HTTP/1.1"])
async def test_malformed_request_line_is_400(conn: Conn, line: bytes) -> None:
    """aiohttp answers what it cannot parse itself: a plain-text 400, then the close."""
    conn.send(line + b"\r\nHost: x\r\n\r\n")
    status, _, _ = await conn.response()
    assert status == 400
    assert await conn.closed()


async def test_oversized_head_is_refused(conn: Conn) -> None:
    """A header line over 64 KiB is a 400 (aiohttp has no 431) and the connection closes."""
    conn.send(b"GET /version HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    status, _, _ = await conn.response()
    assert status == 400
    assert await conn.closed()


async def test_oversized_body_is_413_before_it_is_sent(conn: Conn) -> None:
    conn.send(
        request("POST", CM_PATH, "Content-Type: application/json", "Content-Length: 16777217")
    )
    status, _, body = await conn.response()
    assert status == 413
    assert json.loads(body)["reason"] == "RequestEntityTooLarge"
    assert await conn.closed()


async def test_stop_ends_watches_and_closes_idle_connections() -> None:
    cluster = DevCluster()
    await cluster.start()
    watch = await Conn.open(cluster.port)
    idle = await Conn.open(cluster.port)
    try:
        idle.send(request("GET", "/healthz"))
        assert (await idle.response())[0] == 200
        since = cluster.store.resource_version  # no initial events: the stream stays quiet
        watch.send(request("GET", f"{CM_PATH}?watch=true&resourceVersion={since}"))
        status, headers, _ = await watch.response(head_only=True)
        assert (status, headers["transfer-encoding"]) == (200, "chunked")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await cluster.stop()
        assert loop.time() - started < 1.0
        assert await watch.chunked() == b""
        assert await watch.closed()
        assert await idle.closed()
        with pytest.raises(OSError):
            await Conn.open(cluster.port)
    finally:
        await watch.close()
        await idle.close()


async def test_client_hanging_up_ends_its_watch(devcluster: DevCluster) -> None:
    """A watch without events notices the client is gone and drops its subscription
    instead of holding it until timeoutSeconds."""
    store = devcluster.store
    before = len(store._subscribers)
    conn = await Conn.open(devcluster.port)
    conn.send(request("GET", f"{CM_PATH}?watch=true"))
    await conn.response(head_only=True)
    assert len(store._subscribers) == before + 1
    await conn.close()
    for _ in range(100):
        if len(store._subscribers) == before:
            break
        await asyncio.sleep(0.02)
    assert len(store._subscribers) == before


async def test_handler_error_is_a_500_status_and_the_connection_lives_on(
    conn: Conn, devcluster: DevCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug of the emulator is answered as kube-apiserver answers its own: a 500
    InternalError Status, and the connection serves the next request."""

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(devcluster.api, "get", boom)
    conn.send(request("GET", "/api/v1/namespaces/default"))
    status, headers, body = await conn.response()
    assert status == 500
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["reason"] == "InternalError"
    assert "kaput" in json.loads(body)["message"]
    conn.send(request("GET", "/healthz"))
    assert (await conn.response())[2] == b"ok"


async def test_repeated_and_encoded_query_parameters_and_media_type_parameters(
    conn: Conn, devcluster: DevCluster
) -> None:
    """A repeated ``dryRun``, a ``+``/``%2C``-encoded label selector, and a Content-Type
    in any case with parameters are read as kube-apiserver reads them."""
    for name, app in (("a", "a"), ("b", "b"), ("c", "c")):
        body = json.dumps({"metadata": {"name": name, "labels": {"app": app}}}).encode()
        conn.send(request("POST", CM_PATH, "Content-Type: application/json", body=body))
        assert (await conn.response())[0] == 201
    conn.send(request("GET", f"{CM_PATH}?labelSelector=app+in+(a%2Cb)"))
    status, _, body = await conn.response()
    assert status == 200
    assert sorted(i["metadata"]["name"] for i in json.loads(body)["items"]) == ["a", "b"]
    patch = json.dumps({"data": {"k": "v"}}).encode()
    conn.send(
        request(
            "PATCH",
            f"{CM_PATH}/a?dryRun=All&dryRun=All",
            "Content-Type: Application/Merge-Patch+JSON; charset=utf-8",
            body=patch,
        )
    )
    status, _, body = await conn.response()
    assert status == 200, body
    assert json.loads(body)["data"] == {"k": "v"}
    stored = devcluster.store.get(("", "configmaps"), "default", "a")
    assert stored is not None
    assert "data" not in stored.obj
