"""Request limits: slow senders are cut off, floods are throttled, concurrency is bounded.

A webhook endpoint is on the internet; whoever finds it can open connections and send
slowly (slowloris), announce bodies they never send, or flood it. Each test shows the
limit holding while a genuine delivery still gets through.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from receiver.service import Receiver
from tests.security import webhooks
from tests.security.conftest import StartReceiver
from tests.security.figures import record

GITHUB = webhooks.BY_PROVIDER["github"]


async def send_genuine(
    http: aiohttp.ClientSession, receiver: Receiver, delivery: str | None = None
) -> int:
    body = webhooks.encode(webhooks.push_payload("github", GITHUB.url))
    headers = webhooks.headers(
        "github", body, secret=GITHUB.secrets[0], delivery=delivery or str(uuid.uuid4())
    )
    async with http.post(f"{receiver.url}/hooks/github", data=body, headers=headers) as r:
        return r.status


async def open_raw(receiver: Receiver) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = receiver.url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sent until it closed the connection (fails on timeout).

    A server that closes a socket with request bytes still unread in its buffer makes the
    kernel answer with a reset instead of a FIN; that is a close too, with nothing sent (the
    reader then reports the reset, or the broken pipe our trickling writer met after it).
    """
    async with asyncio.timeout(timeout):
        try:
            return await reader.read()
        except (ConnectionResetError, BrokenPipeError):
            return b""


async def trickle_headers(writer: asyncio.StreamWriter, interval: float) -> None:
    """Send a request's headers one byte at a time, never finishing them."""
    head = b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-Padding: "
    try:
        for byte in head + b"a" * 10_000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)
    except ConnectionError:
        return


async def test_a_client_sending_headers_byte_by_byte_is_disconnected_after_the_header_timeout(
    start_receiver: StartReceiver, http: aiohttp.ClientSession
) -> None:
    receiver = await start_receiver(header_timeout="1s")
    reader, writer = await open_raw(receiver)
    started = time.monotonic()
    trickling = asyncio.create_task(trickle_headers(writer, 0.05))
    try:
        # A genuine delivery is served meanwhile.
        assert await send_genuine(http, receiver) == 202
        answer = await closed_by_server(reader, timeout=5.0)
        elapsed = time.monotonic() - started
    finally:
        trickling.cancel()
        writer.close()
    assert b"HTTP/1.1 2" not in answer
    assert 0.9 <= elapsed < 3.0, elapsed


async def test_many_slow_header_senders_do_not_keep_genuine_deliveries_out(
    start_receiver: StartReceiver, http: aiohttp.ClientSession
) -> None:
    receiver = await start_receiver(header_timeout="1s", max_concurrent_requests=4)
    connections = [await open_raw(receiver) for _ in range(50)]
    trickles = [asyncio.create_task(trickle_headers(w, 0.1)) for _, w in connections]
    try:
        statuses = [await send_genuine(http, receiver) for _ in range(20)]
        closed = await asyncio.gather(*(closed_by_server(r, timeout=5.0) for r, _ in connections))
    finally:
        for task in trickles:
            task.cancel()
        for _, writer in connections:
            writer.close()
    assert statuses == [202] * 20
    assert len(closed) == 50  # every slow connection was closed by the server
    record(
        "slowloris: 50 connections sending headers byte by byte",
        "slow header senders are disconnected after receiver.header_timeout; others are served",
        tried=20,
        accepted=statuses.count(202),
        lost=20 - statuses.count(202),
        errors_5xx=sum(s >= 500 for s in statuses),
        notes="50/50 slow connections closed by the server",
    )


async def test_a_body_shorter_than_its_content_length_is_answered_408_after_the_body_timeout(
    start_receiver: StartReceiver,
) -> None:
    receiver = await start_receiver(body_timeout="1s")
    reader, writer = await open_raw(receiver)
    started = time.monotonic()
    writer.write(
        b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"ref": "r'
    )
    await writer.drain()
    try:
        answer = await closed_by_server(reader, timeout=5.0)
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request body not received in time" in answer
    assert 0.9 <= elapsed < 3.0, elapsed


async def test_a_stalled_body_holds_a_request_slot_only_until_the_body_timeout(
    start_receiver: StartReceiver, http: aiohttp.ClientSession
) -> None:
    receiver = await start_receiver(body_timeout="1s", max_concurrent_requests=1)
    reader, writer = await open_raw(receiver)
    writer.write(
        b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the stalled request takes the only slot
    started = time.monotonic()
    try:
        status = await send_genuine(http, receiver)
        waited = time.monotonic() - started
        stalled = await closed_by_server(reader, timeout=5.0)
    finally:
        writer.close()
    assert stalled.startswith(b"HTTP/1.1 408")
    assert status == 202
    # It waited for the slot (max_concurrent_requests: 1) and got it when the stall ended.
    assert 0.5 <= waited < 3.0, waited


async def test_requests_beyond_max_concurrent_wait_for_a_slot_and_all_are_answered(
    start_receiver: StartReceiver, http: aiohttp.ClientSession
) -> None:
    receiver = await start_receiver(max_concurrent_requests=2)
    statuses = await asyncio.gather(*(send_genuine(http, receiver) for _ in range(100)))
    assert statuses == [202] * 100


async def test_a_source_over_its_rate_limit_gets_429_with_retry_after(
    start_receiver: StartReceiver, http: aiohttp.ClientSession
) -> None:
    receiver = await start_receiver(rate_limit_per_minute=5)
    statuses = [await send_genuine(http, receiver) for _ in range(5)]
    body = webhooks.encode(webhooks.push_payload("github", GITHUB.url))
    headers = webhooks.headers("github", body, secret=GITHUB.secrets[0], delivery="over-limit")
    async with http.post(f"{receiver.url}/hooks/gitlab", data=body, headers=headers) as r:
        limited, retry_after = r.status, r.headers.get("Retry-After")
    assert statuses == [202] * 5
    assert limited == 429
    assert retry_after is not None and 1 <= int(retry_after) <= 60


async def test_there_is_no_rate_limit_unless_configured(
    start_receiver: StartReceiver, http: aiohttp.ClientSession
) -> None:
    receiver = await start_receiver()
    statuses = await asyncio.gather(*(send_genuine(http, receiver) for _ in range(300)))
    assert 429 not in statuses
    assert statuses == [202] * 300
