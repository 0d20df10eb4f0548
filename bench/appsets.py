"""App sets at scale: 1,000 apps from one rule, then a push adding 10 directories and
removing 10, on the real test bed.

The parts are real: the bed's Apache Kafka and kube-apiserver, a git server (`git
http-backend` behind `gitops.gitserver`) fed by the `git` CLI, a receiver and a syncer
(in this process, periodic checks off, so the figures are the set's own work). The
repository holds `services/s0000` … one ConfigMap each; the set `svc` makes one app per
directory, pruning removed ones.

It prints: the first generation of N apps and how long until all N were synced; then,
for one push removing 10 directories and adding 10 (git push + signed GitHub webhook),
the time until the 10 new apps were synced and the 10 removed ones pruned, counted from
the start of `git push` and from the webhook's answer; and the generator's cost per
push: its wall time in the syncer (fetch, match, render, compare, publish) and the CPU
of a generation at that commit re-run here (match, render and compare of all N apps,
nothing left to publish), median of 3.

    python bench/appsets.py [--testbed DIR] [--apps 1000] [--changes 10]

The run's topics (prefix `appsets-<run id>`), consumer group and Namespaces are its own
and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from onbed import (
    add_testbed_argument,
    bed_from,
    delete_namespaces,
    delete_topics,
    kubectl_binary,
    machine,
    run_id,
)

from gitops.demo import git, github_push_payload
from gitops.gitserver import GitHttpServer
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig, Topics, load_config
from schemas.events import SyncFailed, SyncSucceeded, parse_event
from schemas.types import CommitSha
from syncer.generation import Generator, Trigger
from syncer.service import Syncer

SECRET = "bench-secret"  # noqa: S105 - a throwaway secret for 127.0.0.1


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def config_text(
    *, bootstrap: str, prefix: str, kubeconfig: Path, url: str, namespace: str, work: Path
) -> str:
    return f"""\
kafka: {{bootstrap: '{bootstrap}', topic_prefix: {prefix}, partitions: 8}}
clusters: {{bed: {{kubeconfig: {kubeconfig}}}}}
repositories: {{mono: {{url: '{url}', webhook_secret: {{value: {SECRET}}}}}}}
app_sets:
  svc:
    repo: mono
    directories: {{include: ["services/*"]}}
    prune: true
    interval: 1h
    template: {{cluster: bed, namespace: {namespace}, interval: 1h}}
syncer:
  cache_dir: {work / "cache"}
  health_timeout: 5s
  group_id: {prefix}
  inventory_namespace: {namespace}-inventory
"""


def configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  app: {name}\n"


class Outcomes:
    """Sync outcomes by app, read from the end of the topic."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.seen: dict[tuple[str, str | None], float] = {}
        """(app, reason) -> perf_counter() when its success was read."""
        self.failed: list[str] = []

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_end(*self._tps)

    async def until(self, wanted: set[tuple[str, str | None]], timeout: float) -> float:
        """perf_counter() when the last of `wanted` was seen."""
        deadline = time.monotonic() + timeout
        while not wanted <= self.seen.keys():
            if time.monotonic() > deadline:
                missing = len(wanted - self.seen.keys())
                raise TimeoutError(f"{missing} outcomes missing after {timeout:.0f} s")
            batch = await self._consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    event = parse_event(record.value)
                    if isinstance(event, SyncSucceeded):
                        key = (event.data.app, event.data.reason)
                        self.seen.setdefault(key, now)
                        self.seen.setdefault((event.data.app, None), now)
                    elif isinstance(event, SyncFailed):
                        self.failed.append(f"{event.data.app}: {event.data.error}")
        return max(self.seen[k] for k in wanted)

    async def stop(self) -> None:
        await self._consumer.stop()


async def webhook(url: str, repo_url: str, before: str, after: str, copy: Path) -> int:
    lines = await git(copy, "diff", "--name-status", "--no-renames", before, after)
    changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
    for line in lines.splitlines():
        status, path = line.split("\t", 1)
        changes.setdefault(status[0], []).append(path)
    body = json.dumps(
        github_push_payload(
            repo_url=repo_url,
            before=before,
            after=after,
            changed=changes["M"],
            added=changes["A"],
            removed=changes["D"],
            message="add and remove services",
        )
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as answer,
    ):
        return answer.status


async def run(folder: Path, apps: int, changes: int) -> None:
    bed = bed_from(folder)
    assert bed.kubeconfig is not None and bed.kafka_bootstrap is not None  # bed_from checked
    run = run_id()
    prefix, namespace = f"appsets-{run}", f"appsets-bench-{run}"
    print(f"bed: {folder}; run id {run}; {machine()}")
    with tempfile.TemporaryDirectory(prefix="gitops-appsets-") as tmp:
        work = Path(tmp)
        try:
            async with GitHttpServer(work / "git") as server:
                server.create_repo("mono")
                url = server.repo_url("mono")
                config_file = work / "gitops.yaml"
                config_file.write_text(
                    config_text(
                        bootstrap=bed.kafka_bootstrap,
                        prefix=prefix,
                        kubeconfig=bed.kubeconfig,
                        url=url,
                        namespace=namespace,
                        work=work,
                    )
                )
                config = load_config(config_file)
                await ensure_topics(config.kafka)
                await create_namespace(bed.kubeconfig, namespace)
                copy = work / "copy"
                for i in range(apps):
                    target = copy / "services" / f"s{i:04d}" / "settings.yaml"
                    target.parent.mkdir(parents=True)
                    target.write_text(configmap(f"s{i:04d}"))
                await git(copy, "init", "--quiet", "--initial-branch=main")
                await git(copy, "remote", "add", "origin", url)
                await git(copy, "add", "--all")
                await git(copy, "commit", "--quiet", "-m", f"{apps} services")
                await git(copy, "push", "--quiet", "origin", "HEAD:refs/heads/main")
                await measure(config, copy, url, apps, changes)
        finally:
            await asyncio.gather(
                delete_topics(bed.kafka_bootstrap, prefix),
                delete_namespaces(
                    kubectl_binary(),
                    bed.kubeconfig,
                    [namespace, f"{namespace}-inventory"],
                    wait=False,
                ),
            )
            progress("topics deleted, namespaces deleting")


async def create_namespace(kubeconfig: Path, name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        kubectl_binary(), "--kubeconfig", str(kubeconfig), "create", "namespace", name,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await process.wait()


async def measure(config: GitopsConfig, copy: Path, url: str, apps: int, changes: int) -> None:
    topics = Topics(config.kafka.topic_prefix)
    outcomes = Outcomes(config.kafka.bootstrap, topics.sync_events, config.kafka.partitions)
    await outcomes.start()
    try:
        load_started = time.perf_counter()
        cpu_started = time.process_time()
        async with Syncer(config, syncer_id="bench") as syncer, Receiver(config) as receiver:
            assert syncer.catalog is not None and syncer.generator is not None
            first: set[tuple[str, str | None]] = {(f"svc-s{i:04d}", None) for i in range(apps)}
            synced_at = await outcomes.until(first, timeout=300)
            generation = syncer.generator.generator.history[0]
            print(
                f"first generation: {generation.apps} apps in {generation.seconds:.2f} s;"
                f" all {apps} synced {synced_at - load_started:.1f} s after the syncer started"
                f" (process CPU {time.process_time() - cpu_started:.1f} s)"
            )

            before = await git(copy, "rev-parse", "HEAD")
            for i in range(changes):
                await git(copy, "rm", "--quiet", "-r", f"services/s{i:04d}")
                target = copy / "services" / f"n{i:04d}" / "settings.yaml"
                target.parent.mkdir(parents=True)
                target.write_text(configmap(f"n{i:04d}"))
            await git(copy, "add", "--all")
            await git(copy, "commit", "--quiet", "-m", "add and remove services")
            after = await git(copy, "rev-parse", "HEAD")
            cpu_push = time.process_time()
            pushed = time.perf_counter()
            await git(copy, "push", "--quiet", "origin", "HEAD:refs/heads/main")
            status = await webhook(f"{receiver.url}/hooks/github", url, before, after, copy)
            answered = time.perf_counter()
            assert status == 202, status
            added: set[tuple[str, str | None]] = {
                (f"svc-n{i:04d}", "webhook") for i in range(changes)
            }
            removed: set[tuple[str, str | None]] = {
                (f"svc-s{i:04d}", "removed") for i in range(changes)
            }
            removed_at = await outcomes.until(removed, timeout=120)
            added_at = await outcomes.until(added, timeout=120)
            cpu_push = time.process_time() - cpu_push
            push_generation = syncer.generator.generator.history[-1]
            print(
                f"push removing {changes} and adding {changes} directories (git push"
                f" {answered - pushed:.2f} s incl. the webhook):"
            )
            print(
                f"  {changes} removed apps pruned {removed_at - pushed:.2f} s after git push"
                f" ({removed_at - answered:.2f} s after the webhook's 202)"
            )
            print(
                f"  {changes} new apps synced    {added_at - pushed:.2f} s after git push"
                f" ({added_at - answered:.2f} s after the webhook's 202)"
            )
            print(
                f"  generator in the syncer: {push_generation.seconds * 1000:.0f} ms wall"
                f" ({len(push_generation.added)} added, {len(push_generation.removed)} removed,"
                f" {push_generation.apps} apps); whole process CPU for the push {cpu_push:.2f} s"
            )
            steps = ", ".join(f"{k} {v * 1000:.0f}" for k, v in push_generation.steps.items())
            print(f"  its steps, ms since it began: {steps}")
            rerun = Generator(
                config=config,
                catalog=syncer.catalog,
                git=syncer.generator.generator.git,
                producer=_NoProducer(),
                source="/bench",
                app_gone=_never,
            )
            cpu: list[float] = []
            for _ in range(3):
                rerun.forget("svc")
                started = time.process_time()
                result = await rerun.generate("svc", Trigger("poll", CommitSha(after)))
                cpu.append(time.process_time() - started)
                assert not (result.added or result.removed or result.changed), result
            print(
                f"  generation at that commit, re-run: {statistics.median(cpu) * 1000:.0f} ms CPU"
                f" (median of 3; {result.apps} apps matched, rendered and compared)"
            )
            if outcomes.failed:
                print(f"  failures: {outcomes.failed[:3]}")
    finally:
        await outcomes.stop()


class _NoProducer:
    """The re-run has nothing to publish; sending anything would be a bug of the bench."""

    async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[None]:
        raise AssertionError(f"the re-run published to {topic}")


async def _never(app: str, spec: object) -> bool:
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_testbed_argument(parser)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.testbed, args.apps, args.changes))


if __name__ == "__main__":
    main()
