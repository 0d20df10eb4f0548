"""`gitops events tail`, `gitops apps` and `gitops sync` work against the bed's Apache Kafka."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer

from gitops.topics import ensure_topics
from schemas import SyncRequested, Topics, parse_config, parse_event
from schemas.events import ObjectResult, SyncFailed, SyncResultData, SyncSucceeded
from schemas.types import AppName, CommitSha
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
kafka: {{bootstrap: "{bootstrap}", topic_prefix: "{topic_prefix}", partitions: 2}}
clusters: {{prod: {{kubeconfig: /nonexistent}}}}
repositories: {{platform: {{url: "https://git.example/acme/platform.git"}}}}
apps:
  web: {{repo: platform, path: apps/web, cluster: prod}}
  api: {{repo: platform, path: apps/api, cluster: prod}}
"""


async def gitops(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _setup(kafka: RealKafka, tmp_path: Path) -> Path:
    path = tmp_path / "gitops.yaml"
    path.write_text(CONFIG.format(bootstrap=kafka.bootstrap, topic_prefix=kafka.topic_prefix))
    config = parse_config(path.read_text())
    await ensure_topics(config.kafka)
    producer = AIOKafkaProducer(**config.kafka.producer_options())
    await producer.start()
    try:
        ok = SyncSucceeded(
            source="/test",
            subject="web",
            data=SyncResultData(
                app=AppName("web"),
                cluster="prod",
                commit=CommitSha("a" * 40),
                duration_ms=120,
                objects=[
                    ObjectResult(api_version="v1", kind="ConfigMap", name="c", action="created"),
                    ObjectResult(api_version="v1", kind="Service", name="s", action="configured"),
                ],
            ),
        )
        bad = SyncFailed(
            source="/test",
            subject="api",
            data=SyncResultData(
                app=AppName("api"),
                cluster="prod",
                commit=CommitSha("b" * 40),
                error="Deployment api/web: spec.replicas: Invalid value",
            ),
        )
        for event in (ok, bad):
            await producer.send_and_wait(
                Topics(kafka.topic_prefix).sync_events,
                event.to_bytes(),
                key=event.data.app.encode(),
            )
    finally:
        await producer.stop()
    return path


async def test_events_tail_prints_one_readable_line_per_outcome(
    kafka: RealKafka, tmp_path: Path
) -> None:
    config = await _setup(kafka, tmp_path)
    code, out, err = await gitops("events", "tail", "--config", str(config))
    assert code == 0, err
    lines = out.splitlines()
    assert any(
        "web" in ln and "aaaaaaa" in ln and "succeeded" in ln and "created 1, configured 1" in ln
        for ln in lines
    ), out
    assert any(
        "api" in ln and "failed" in ln and "spec.replicas: Invalid value" in ln for ln in lines
    ), out


async def test_events_tail_filters_by_app_and_type(kafka: RealKafka, tmp_path: Path) -> None:
    config = await _setup(kafka, tmp_path)
    code, out, _ = await gitops("events", "tail", "--config", str(config), "--app", "api", "--json")
    assert code == 0
    events = [parse_event(line) for line in out.splitlines()]
    assert [e.type for e in events] == ["gitops.sync.failed"]
    code, out, _ = await gitops(
        "events", "tail", "--config", str(config), "--type", "gitops.sync.succeeded", "--json"
    )
    assert [parse_event(line).data.app for line in out.splitlines()] == ["web"]


async def test_apps_lists_every_app_with_its_last_outcome(kafka: RealKafka, tmp_path: Path) -> None:
    config = await _setup(kafka, tmp_path)
    code, out, err = await gitops("apps", "--config", str(config), "--json")
    assert code == 0, err
    rows = {row["app"]: row for row in json.loads(out)}
    assert rows["web"]["last_outcome"] == "succeeded"
    assert rows["web"]["commit"] == "a" * 40
    assert rows["api"]["last_outcome"] == "failed"
    assert rows["api"]["path"] == "apps/api"


async def test_sync_publishes_a_manual_request_keyed_by_app(
    kafka: RealKafka, tmp_path: Path
) -> None:
    config = await _setup(kafka, tmp_path)
    code, out, err = await gitops("sync", "web", "--config", str(config), "--commit", "c" * 40)
    assert code == 0, err
    assert "requested sync of web (ccccccc)" in out
    (record,) = await read_topic(
        kafka.bootstrap, Topics(kafka.topic_prefix).sync_requests, expect=1
    )
    request = parse_event(record.value)
    assert isinstance(request, SyncRequested)
    assert record.key == b"web"
    assert (request.data.reason, request.data.commit, request.data.branch) == (
        "manual",
        "c" * 40,
        "main",
    )
    assert request.data.repo_url == "https://git.example/acme/platform.git"


async def test_sync_of_an_unknown_app_names_the_known_ones(
    kafka: RealKafka, tmp_path: Path
) -> None:
    config = await _setup(kafka, tmp_path)
    code, _, err = await gitops("sync", "wbe", "--config", str(config))
    assert code == 2
    assert "unknown app 'wbe' (known: api, web)" in err


async def test_sync_refuses_a_short_commit(kafka: RealKafka, tmp_path: Path) -> None:
    config = await _setup(kafka, tmp_path)
    code, _, err = await gitops("sync", "web", "--config", str(config), "--commit", "abc123")
    assert code == 2
    assert "full 40-character" in err
