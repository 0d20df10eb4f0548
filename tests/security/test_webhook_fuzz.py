"""Ten thousand hostile webhook requests against `gitops receiver` and the bed's Kafka.

The promise, checked by reading the topics back: no request gets a 5xx; nothing reaches
Kafka unless a secret registered for the repository it names signed its exact bytes;
no sync is requested for a repository that is not registered; every accepted delivery
is on the topic exactly once; no secret appears in a response, a log line or /metrics.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gitops.topics import ensure_topics
from schemas import GitopsConfig, Topics
from schemas.events import PushReceived, SyncRequested, parse_event
from tests.security import webhooks
from tests.security.figures import record
from tests.security.generator import Case, Generator
from tests.security.processes import receiver_process, write_config
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic

REQUESTS = int(os.environ.get("GITOPS_FUZZ_REQUESTS", "10000"))
SEED = int(os.environ.get("GITOPS_FUZZ_SEED", "20261126"))
CONCURRENCY = 50


@dataclass
class Reply:
    case: Case
    status: int  # 0: the connection failed before an answer
    body: str
    headers: str


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 16384):
        yield body[start : start + 16384]


async def send_all(url: str, cases: list[Case]) -> list[Reply]:
    """Send every case, at most CONCURRENCY at once, over one client session."""
    slots = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(case: Case) -> Reply:
            async with slots:
                data: Any = _chunks(case.body) if case.chunked else case.body
                try:
                    async with http.post(
                        f"{url}/hooks/{case.provider}", data=data, headers=case.headers
                    ) as r:
                        text = await r.text(errors="replace")
                        return Reply(case, r.status, text, repr(dict(r.headers)))
                except aiohttp.ClientError as exc:
                    return Reply(case, 0, repr(exc), "")

        return await asyncio.gather(*(send(case) for case in cases))


def accepted(reply: Reply) -> bool:
    """Answered as published: 202, or 200 "recorded" (a branch no app follows)."""
    if reply.status == 202:
        return True
    return reply.status == 200 and '"recorded"' in reply.body


async def test_ten_thousand_hostile_webhooks_publish_nothing_unsigned_and_never_fail_5xx(
    kafka: RealKafka, tmp_path: Path
) -> None:
    raw = webhooks.config_dict(kafka.bootstrap, kafka.topic_prefix)
    # Secrets come from the environment, as in production.
    env: dict[str, str] = {}
    for name, repo in raw["repositories"].items():
        refs = repo.get("webhook_secret") or []
        for index, ref in enumerate(refs):
            variable = f"SEC_{name.upper()}_{index}"
            env[variable] = ref.pop("value")
            ref["env"] = variable
    config_path = write_config(tmp_path / "gitops.yaml", raw)
    config = GitopsConfig.model_validate(
        {
            **raw,
            "repositories": webhooks.config_dict(kafka.bootstrap, kafka.topic_prefix)[
                "repositories"
            ],
        }
    )
    await ensure_topics(config.kafka)
    topics = Topics(config.kafka.topic_prefix)
    generator = Generator(SEED)
    first = generator.cases(REQUESTS // 2)
    second = generator.cases(REQUESTS - len(first))  # replays now also repeat finished ones
    log = tmp_path / "receiver.log"

    async with receiver_process(config_path, log, env=env) as url:
        started = time.monotonic()
        replies = await send_all(url, first)
        replies += await send_all(url, second)
        elapsed = time.monotonic() - started
        async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
            metrics = await r.text()

    # What the receiver answered.
    by_status = collections.Counter(r.status for r in replies)
    unexpected = collections.Counter(
        (r.case.kind, r.case.provider, r.status)
        for r in replies
        if r.status not in r.case.expect and not (r.status == 0 and r.case.kind == "huge body")
    )
    errors_5xx = sum(r.status >= 500 for r in replies)

    # What reached Kafka.
    accepted_deliveries = {r.case.delivery for r in replies if accepted(r)}
    authorized = {r.case.delivery for r in replies if r.case.authorized}
    pushes = [
        parse_event(x.value)
        for x in await read_topic(
            kafka.bootstrap, topics.push_events, expect=len(accepted_deliveries), timeout=30
        )
    ]
    requests = [
        parse_event(x.value) for x in await read_topic(kafka.bootstrap, topics.sync_requests)
    ]
    published = collections.Counter(
        p.data.delivery_id for p in pushes if isinstance(p, PushReceived)
    )
    unsigned_published = [d for d in published if d not in authorized]
    lost = accepted_deliveries - set(published)
    duplicated = {d: n for d, n in published.items() if n > 1}
    registered_apps = {r.app for r in webhooks.REPOS}
    registered_urls = {r.url for r in webhooks.REPOS}
    stray_requests = [
        q
        for q in requests
        if not isinstance(q, SyncRequested)
        or q.data.app not in registered_apps
        or q.data.repo_url not in registered_urls
        or q.data.delivery_id not in authorized
    ]

    # Secrets anywhere they must not be.
    outputs = {
        "responses": "\n".join(r.body + r.headers for r in replies),
        "logs": log.read_text(encoding="utf-8", errors="replace"),
        "metrics": metrics,
        "events": "\n".join(json.dumps(e.model_dump(mode="json")) for e in [*pushes, *requests]),
    }
    leaks = [
        (where, secret)
        for where, text in outputs.items()
        for secret in webhooks.ALL_SECRETS
        if secret in text
    ]

    kinds = collections.Counter(r.case.kind for r in replies)
    summary = (
        f"seed {SEED}: {len(replies)} requests in {elapsed:.1f}s "
        f"({len(replies) / elapsed:.0f}/s); statuses {dict(sorted(by_status.items()))}; "
        f"{len(accepted_deliveries)} deliveries accepted, {len(published)} on the topic, "
        f"{len(requests)} sync requests; kinds {dict(kinds)}"
    )
    print(f"\n{summary}")
    record(
        "hostile webhooks: 10,000 generated requests over 4 providers",
        "0 responses 5xx; 0 publishes without a valid signature; 0 sync requests for "
        "unregistered repositories; every accepted delivery on the topic exactly once",
        tried=len(replies),
        accepted=len(accepted_deliveries),
        lost=len(lost),
        duplicated=len(duplicated),
        errors_5xx=errors_5xx,
        notes=(
            f"{len(unsigned_published)} unsigned publishes, {len(stray_requests)} stray sync "
            f"requests, {len(leaks)} secret leaks; {len(replies) / elapsed:.0f} req/s; "
            f"statuses {dict(sorted(by_status.items()))}"
        ),
    )
    assert errors_5xx == 0, summary
    assert not unexpected, unexpected
    assert not unsigned_published, unsigned_published[:5]
    assert not stray_requests, stray_requests[:3]
    assert not lost, sorted(lost)[:5]
    assert not duplicated, duplicated
    assert not leaks, leaks
    assert by_status[429] == 0  # no rate limit unless configured
