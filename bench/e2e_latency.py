"""Push → webhook → applied: latency of the whole pipeline, end to end.

Starts the real parts on 127.0.0.1 (Tansu broker, git http-backend, the Kubernetes API
emulator, one receiver and one syncer as processes), then N times: commit a change to a
20-object app, `git push` it, send the signed GitHub webhook, and wait for the
`gitops.sync.succeeded` event of that commit. Prints p50/p90/p99, and for a baseline in
the same run the time of `git push` alone.

    python bench/e2e_latency.py [--pushes 100] [--objects 20]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from gitops.broker import EmbeddedBroker, free_port
from gitops.demo import git, github_push_payload
from gitops.gitserver import GitHttpServer
from gitops.processes import ChildProcess
from gitops.topics import ensure_topics
from schemas import load_config
from schemas.events import SyncFailed, SyncSucceeded, parse_event

SECRET = "bench-secret"  # noqa: S105 - a throwaway secret for 127.0.0.1


def manifests(objects: int, round_: int) -> dict[str, str]:
    files = {"app/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n"}
    for i in range(objects - 1):
        value = round_ if i == 0 else 0
        files[f"app/cm-{i:02d}.yaml"] = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:02d}\n"
            f"data:\n  round: '{value}'\n"
        )
    return files


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


class Outcomes:
    """Reads sync outcomes from the end of the topic, so each wait sees only new ones."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        self._topic = topic
        self.seen: dict[str, str] = {}

    async def start(self) -> None:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in partitions]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)

    async def wait_for(self, commit: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while commit not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no outcome for {commit[:7]}")
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 0.05) * 1000) + 1)
            for records in batch.values():
                for record in records:
                    event = parse_event(record.value)
                    if isinstance(event, SyncSucceeded | SyncFailed) and event.data.commit:
                        self.seen[event.data.commit] = event.type
        return self.seen[commit]

    async def stop(self) -> None:
        await self._consumer.stop()


async def main(pushes: int, objects: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gitops-e2e-") as tmp:
        work = Path(tmp)
        logs = work / "logs"
        logs.mkdir()
        async with EmbeddedBroker() as broker, GitHttpServer(work / "git") as server:
            server.create_repo("bench")
            url = server.repo_url("bench")
            api_port, hook_port = free_port(), free_port()
            kubeconfig = work / "kubeconfig"
            config_file = work / "gitops.yaml"
            config_file.write_text(
                f"kafka: {{bootstrap: '{broker.bootstrap}', idempotence: false, partitions: 4}}\n"
                f"clusters: {{local: {{kubeconfig: {kubeconfig}}}}}\n"
                f"repositories: {{bench: {{url: '{url}', webhook_secret: {{value: {SECRET}}}}}}}\n"
                "apps: {bench: {repo: bench, path: app, cluster: local, namespace: bench,"
                " interval: 10m}}\n"
                f"syncer: {{cache_dir: {work / 'cache'}, health_timeout: 5s}}\n"
            )
            config = load_config(config_file)
            await ensure_topics(config.kafka)
            copy = work / "copy"
            copy.mkdir()
            await git(copy, "init", "--quiet", "--initial-branch=main")
            await git(copy, "remote", "add", "origin", url)
            cluster = ChildProcess(
                "devcluster",
                ["devcluster", "--port", str(api_port), "--kubeconfig", str(kubeconfig)],
                log_dir=logs,
            )
            receiver = ChildProcess(
                "receiver",
                [
                    "receiver",
                    "--config",
                    str(config_file),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(hook_port),
                    "--log-level",
                    "WARNING",
                ],
                log_dir=logs,
            )
            syncer = ChildProcess(
                "syncer",
                [
                    "syncer",
                    "--config",
                    str(config_file),
                    "--id",
                    "s1",
                    "--no-http",
                    "--log-level",
                    "WARNING",
                ],
                log_dir=logs,
            )
            async with cluster, receiver, syncer:
                await wait_http(f"http://127.0.0.1:{api_port}/version")
                await wait_http(f"http://127.0.0.1:{hook_port}/readyz")
                outcomes = Outcomes(broker.bootstrap, "gitops.sync-events")
                await outcomes.start()
                hook = f"http://127.0.0.1:{hook_port}/hooks/github"
                latencies, push_times = [], []
                async with aiohttp.ClientSession() as session:
                    for round_ in range(pushes + 1):
                        for name, text in manifests(objects, round_).items():
                            (copy / name).parent.mkdir(parents=True, exist_ok=True)
                            (copy / name).write_text(text)
                        before = await git(copy, "rev-parse", "HEAD") if round_ else "0" * 40
                        await git(copy, "add", "--all")
                        await git(copy, "commit", "--quiet", "-m", f"round {round_}")
                        after = await git(copy, "rev-parse", "HEAD")
                        started = time.perf_counter()
                        await git(copy, "push", "--quiet", "origin", "HEAD:refs/heads/main")
                        pushed = time.perf_counter()
                        body = json.dumps(
                            github_push_payload(
                                repo_url=url,
                                before=before,
                                after=after,
                                changed=["app/cm-00.yaml"],
                                message=f"round {round_}",
                            )
                        ).encode()
                        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                        headers = {
                            "Content-Type": "application/json",
                            "X-GitHub-Event": "push",
                            "X-GitHub-Delivery": str(uuid.uuid4()),
                            "X-Hub-Signature-256": f"sha256={signature}",
                        }
                        async with session.post(hook, data=body, headers=headers) as response:
                            assert response.status == 202, await response.text()
                        kind = await outcomes.wait_for(after, timeout=30)
                        assert kind == "gitops.sync.succeeded", kind
                        if round_:  # the first sync creates everything; not a steady push
                            latencies.append(time.perf_counter() - started)
                            push_times.append(pushed - started)
                await outcomes.stop()
    ms = sorted(x * 1000 for x in latencies)
    quantiles = statistics.quantiles(ms, n=100, method="inclusive")
    push_p50 = statistics.median(push_times) * 1000
    print(f"pushes: {len(ms)} of a {objects}-object app (one object changed each)")
    print(
        f"push -> webhook -> applied: p50 {quantiles[49]:.0f} ms, p90 {quantiles[89]:.0f} ms, "
        f"p99 {quantiles[98]:.0f} ms, max {ms[-1]:.0f} ms  (targets: p50 <= 300, p99 <= 1000)"
    )
    print(
        f"baseline `git push` alone: p50 {push_p50:.0f} ms; pipeline after the push: "
        f"p50 {quantiles[49] - push_p50:.0f} ms ({quantiles[49] / push_p50:.1f}x the push)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--objects", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(asyncio.wait_for(main(args.pushes, args.objects), timeout=600))
