"""How fast a waiting app starts once its dependency is ready, across two syncers.

On the real test bed (Apache Kafka, kube-apiserver): two syncers in this process, one
consumer group; `web` depends on `platform` and their keys land on partitions no two
members share, so each app has its own syncer. Periodic checks are off. Each round pushes
a commit changing both apps (git http-backend on 127.0.0.1), asks for `web` first (it is
skipped, "waiting for platform", since platform is not at the new head yet), then for
`platform`. Measured per round, from the events' own timestamps:

* wake-up: platform's `gitops.sync.succeeded` -> the `dependency` request web's syncer
  publishes (the status record on the app-status topic, read by the other syncer);
* web applied: that request -> web's `gitops.sync.succeeded`.

The run's topics and Namespaces are deleted at the end.

    python bench/dependency_wakeup.py --testbed /path/to/bed [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.onbed import (
    add_testbed_argument,
    bed_from,
    delete_namespaces,
    delete_topics,
    kubectl_binary,
    machine,
    run_id,
)
from gitops.demo import git
from gitops.gitserver import GitHttpServer
from gitops.topics import ensure_topics
from schemas import GitopsConfig, Topics
from schemas.events import AnyEvent, SyncRequested, SyncRequestedData, parse_event
from schemas.types import AppName, CommitSha
from syncer.ownership import partition_of
from syncer.service import Syncer

PARTITIONS = 4


class Trail:
    """Every event of the run's request and outcome topics, as they arrive."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.events: list[AnyEvent] = []
        self._bootstrap, self._topics = bootstrap, topics
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, fetch_max_wait_ms=20)
        await self._consumer.start()
        tps = [TopicPartition(t, p) for t in self._topics for p in range(PARTITIONS)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._read(self._consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                self.events.extend(parse_event(r.value) for r in records if r.value)

    async def wait(self, match: object, timeout: float = 60.0) -> AnyEvent:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if match(event):  # type: ignore[operator]
                    return event
            await asyncio.sleep(0.01)
        raise TimeoutError("the expected event did not come")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


def configmap(name: str, value: int) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"


def config_for(bootstrap: str, prefix: str, kubeconfig: Path, url: str, ns: str) -> GitopsConfig:
    common = {"repo": "bench", "cluster": "bed", "namespace": ns}
    return GitopsConfig.model_validate(
        {
            "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix, "partitions": PARTITIONS},
            "clusters": {"bed": {"kubeconfig": str(kubeconfig)}},
            "repositories": {"bench": {"url": url}},
            "apps": {
                "platform": {**common, "path": "apps/platform"},
                "web": {**common, "path": "apps/web", "depends_on": ["platform"]},
            },
            "syncer": {
                "group_id": f"{prefix}-syncers",
                "inventory_namespace": f"{ns}-inv",
                "health_timeout": "10s",
                "session_timeout": "6s",
                "heartbeat_interval": "1s",
            },
        }
    )


async def run(folder: Path, rounds: int) -> tuple[list[float], list[float]]:
    bed = bed_from(folder)
    assert bed.kubeconfig is not None and bed.kafka_bootstrap is not None  # bed_from checked
    assert partition_of("platform", PARTITIONS) != partition_of("web", PARTITIONS)
    run = run_id()
    prefix, ns = f"deps-{run}", f"deps-bench-{run}"
    print(f"bed: {folder}; run id {run}; run topics {prefix}.*; {machine()}")
    wakeups: list[float] = []
    applies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gitops-deps-") as tmp:
        work = Path(tmp)
        try:
            async with GitHttpServer(work / "git") as server, AsyncExitStack() as stack:
                server.create_repo("bench")
                config = config_for(
                    bed.kafka_bootstrap, prefix, bed.kubeconfig, server.repo_url("bench"), ns
                )
                await ensure_topics(config.kafka)
                topics = Topics(prefix)
                copy = work / "copy"
                copy.mkdir()
                await git(copy, "init", "--quiet", "--initial-branch=main")
                await git(copy, "remote", "add", "origin", server.repo_url("bench"))
                (copy / "apps/platform").mkdir(parents=True)
                (copy / "apps/web").mkdir(parents=True)
                ns_yaml = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
                (copy / "apps/platform/ns.yaml").write_text(ns_yaml)
                syncers = []
                for name in ("b1", "b2"):
                    settings = config.syncer.model_copy(update={"cache_dir": str(work / name)})
                    one = config.model_copy(update={"syncer": settings})
                    syncers.append(await stack.enter_async_context(Syncer(one, syncer_id=name)))
                trail = Trail(bed.kafka_bootstrap, [topics.sync_requests, topics.sync_events])
                await trail.start()
                stack.push_async_callback(trail.stop)
                producer = AIOKafkaProducer(**config.kafka.producer_options())
                await producer.start()
                stack.push_async_callback(producer.stop)
                await assigned(syncers)
                for round_ in range(rounds + 1):  # round 0 warms up (first sync, namespaces)
                    wake, apply = await one_round(copy, round_, config, producer, trail)
                    if round_:
                        wakeups.append(wake)
                        applies.append(apply)
        finally:
            await delete_topics(bed.kafka_bootstrap, prefix)
            await delete_namespaces(kubectl_binary(), bed.kubeconfig, [ns, f"{ns}-inv"])
    return wakeups, applies


async def assigned(syncers: list[Syncer]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = [s.ownership.partitions if s.ownership else frozenset() for s in syncers]
        if all(held) and sum(map(len, held)) == PARTITIONS:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the syncers did not share the partitions out")


async def one_round(
    copy: Path, round_: int, config: GitopsConfig, producer: AIOKafkaProducer, trail: Trail
) -> tuple[float, float]:
    for app in ("platform", "web"):
        (copy / f"apps/{app}/cm.yaml").write_text(configmap(f"{app}-settings", round_))
    await git(copy, "add", "--all")
    await git(copy, "commit", "--quiet", "-m", f"round {round_}")
    after = CommitSha(await git(copy, "rev-parse", "HEAD"))
    await git(copy, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    topics = Topics(config.kafka.topic_prefix)
    url = config.repositories["bench"].url
    seen = len(dependency_requests(trail))
    requests = {
        app: SyncRequested(
            source="/bench",
            subject=app,
            data=SyncRequestedData(
                app=AppName(app), repo_url=url, branch="main", commit=after, reason="webhook"
            ),
        )
        for app in ("web", "platform")
    }
    web = requests["web"]
    await producer.send_and_wait(topics.sync_requests, web.to_bytes(), key=b"web")
    await trail.wait(lambda e: getattr(e.data, "request_id", None) == web.id)  # it waits
    platform = requests["platform"]
    await producer.send_and_wait(topics.sync_requests, platform.to_bytes(), key=b"platform")
    ready = await trail.wait(
        lambda e: e.type == "gitops.sync.succeeded" and e.data.request_id == requests["platform"].id
    )
    again = await trail.wait(lambda e: e in dependency_requests(trail)[seen:])
    synced = await trail.wait(
        lambda e: e.type == "gitops.sync.succeeded" and e.data.request_id == again.id
    )
    return (
        (again.time - ready.time).total_seconds() * 1000,
        (synced.time - again.time).total_seconds() * 1000,
    )


def dependency_requests(trail: Trail) -> list[AnyEvent]:
    """web's requests asked again by its syncer (the first round's may follow the sync
    of platform that web's syncer asked for itself, platform having no status yet)."""
    return [
        e
        for e in trail.events
        if isinstance(e, SyncRequested) and e.data.app == "web" and e.data.reason == "dependency"
    ]


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.0f} ms, p95 {p95:.0f} ms, max {ordered[-1]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_testbed_argument(parser)
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    args = parser.parse_args()
    started = time.monotonic()
    wakeups, applies = asyncio.run(run(args.testbed, args.rounds))
    print(f"rounds: {len(wakeups)} in {time.monotonic() - started:.1f} s")
    print(f"wake-up (platform succeeded -> web's dependency request): {quantiles(wakeups)}")
    print(f"web applied (dependency request -> web succeeded):        {quantiles(applies)}")


if __name__ == "__main__":
    main()
