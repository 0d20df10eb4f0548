"""Load figures for the webhook receiver: signed GitHub pushes/s, latency, nothing lost.

A Tansu broker (the embedded one) and the receiver run as their own processes
(`python -m gitops receiver`), so the load client does not share a core-bound event loop
with the server. One client process sends bounded load of the real GitHub push sample,
signed, each with a unique delivery id, to 127.0.0.1:

1. baseline: `GET /healthz` at the same concurrency (the HTTP floor of this process);
2. max throughput: `--requests` pushes at `--concurrency`;
3. fixed rate: `--rate` pushes/s for `--seconds`, open loop (latency counted from each
   request's scheduled time, so a stall is not hidden);

then it reads both topics back and checks that every 202 is on them exactly once.

Under each phase it prints the CPU time each process (receiver, broker, this client) used
per request, from /proc: the receiver's figure is what tuning changes, and it moves less
than requests/s when other work shares the machine. The load average printed first says
how quiet the machine was; figures taken under load are not comparable with quiet ones.

    python bench/receiver_load.py [--requests 20000] [--concurrency 64] [--rate 500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from gitops.broker import EmbeddedBroker, free_port
from gitops.topics import ensure_topics
from schemas import parse_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "webhook-samples" / "github" / "push-branch-update.json"
SECRET = "bench-secret"  # noqa: S105 - a throwaway secret for a local benchmark
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["RECEIVER_PROFILE"]]
    if os.environ.get("RECEIVER_PROFILE")
    else []
)
CONFIG = """
kafka: {{bootstrap: "{bootstrap}", partitions: 12, idempotence: false}}
clusters: {{local: {{in_cluster: true}}}}
repositories:
  hello: {{url: "git@github.com:codertocat/hello-world.git", webhook_secret: {{value: {secret}}}}}
apps:
  hello-web: {{repo: hello, branch: master, cluster: local}}
"""


def figures(label: str, rps: float, latencies: list[float]) -> str:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return f"{label:<42} {rps:7.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time per request of each process during one phase: who the bottleneck is."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.start = {name: cpu_seconds(pid) for name, pid in processes.items()}

    def per_request(self, count: int) -> str:
        used = {n: cpu_seconds(pid) - self.start[n] for n, pid in self.processes.items()}
        return "  CPU/req " + ", ".join(f"{n} {s / count * 1e6:4.0f} us" for n, s in used.items())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, body: bytes) -> None:
        self.session, self.url, self.body = session, url, body
        self.signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.accepted: list[str] = []

    async def push(self) -> None:
        self.sent += 1
        delivery = f"bench-{self.sent}-{os.getpid()}"
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": self.signature,
        }
        async with self.session.post(
            f"{self.url}/hooks/github", data=self.body, headers=headers
        ) as r:
            await r.read()
            self.statuses[r.status] += 1
            if r.status == 202:
                self.accepted.append(delivery)

    async def health(self) -> None:
        async with self.session.get(f"{self.url}/healthz") as r:
            await r.read()


async def closed_loop(action, total: int, concurrency: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """`total` calls with `concurrency` workers; returns (calls/s, latencies in ms)."""
    latencies: list[float] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await action()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


async def open_loop(action, rate: float, seconds: float) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Start one call every 1/rate s regardless of answers; latency from the scheduled time."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    count = int(rate * seconds)
    start = loop.time() + 0.05

    async def one(scheduled: float) -> None:
        await action()
        latencies.append((loop.time() - scheduled) * 1000)

    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return count / (loop.time() - start), latencies


async def count_deliveries(bootstrap: str, topic: str, timeout: float = 60.0) -> Counter[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: Counter[str] = Counter()
        deadline, last_new = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < 2.0:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for record in records:
                    seen[json.loads(record.value)["data"]["delivery_id"]] += 1
                    last_new = time.monotonic()
        return seen
    finally:
        await consumer.stop()


async def main(args: argparse.Namespace) -> int:
    load_before = f"{os.getloadavg()[0]:.2f}"
    body = SAMPLE.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
            text = CONFIG.format(bootstrap=broker.bootstrap, secret=SECRET)
            await ensure_topics(parse_config(text, environ={}).kafka)
            config_path = Path(tmp) / "gitops.yaml"
            config_path.write_text(text)
            port = free_port()
            log = (Path(tmp) / "receiver.log").open("wb")
            server = await asyncio.create_subprocess_exec(
                sys.executable, *PROFILE, "-m", "gitops", "receiver", "--config", str(config_path),
                "--host", "127.0.0.1", "--port", str(port), cwd=ROOT, stderr=log,
                env={**os.environ, "GITOPS_KAFKA_BOOTSTRAP": broker.bootstrap},
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            try:
                connector = aiohttp.TCPConnector(limit=args.concurrency)
                async with aiohttp.ClientSession(connector=connector) as session:
                    await wait_ready(session, url)
                    client = Client(session, url, body)
                    await closed_loop(client.push, 500, args.concurrency)  # warm-up
                    pids = {
                        "receiver": server.pid,
                        "broker": broker.pid or 0,
                        "client": os.getpid(),
                    }
                    meter = CpuMeter(pids)
                    base_rps, base_lat = await closed_loop(
                        client.health, args.requests // 2, args.concurrency
                    )
                    base_cpu = meter.per_request(args.requests // 2)
                    meter = CpuMeter(pids)
                    max_rps, max_lat = await closed_loop(
                        client.push, args.requests, args.concurrency
                    )
                    max_cpu = meter.per_request(args.requests)
                    meter = CpuMeter(pids)
                    fixed_rps, fixed_lat = await open_loop(client.push, args.rate, args.seconds)
                    fixed_cpu = meter.per_request(int(args.rate * args.seconds))
            finally:
                server.terminate()
                await asyncio.wait_for(server.wait(), timeout=30)
                log.close()
            pushes = await count_deliveries(broker.bootstrap, "gitops.push-events")
            requests = await count_deliveries(broker.bootstrap, "gitops.sync-requests")

    accepted = Counter(client.accepted)
    exact = pushes == accepted and requests == accepted
    print(f"load average before the run: {load_before}, after: {os.getloadavg()[0]:.2f}")
    print(f"payload: {SAMPLE.name} ({len(body)} bytes), signed, unique delivery ids")
    print(figures(f"baseline GET /healthz (concurrency {args.concurrency})", base_rps, base_lat))
    print(base_cpu)
    print(figures("max throughput, pushes", max_rps, max_lat) + f"  {max_rps / base_rps:.2f}x base")
    print(max_cpu)
    print(figures(f"fixed rate {args.rate:.0f} req/s, pushes", fixed_rps, fixed_lat))
    print(fixed_cpu)
    print(f"answers: {dict(client.statuses)}")
    print(f"read back: push-events {sum(pushes.values())}, sync-requests {sum(requests.values())},"
          f" 202s {len(client.accepted)}; each 202'd delivery exactly once: {exact}")  # fmt: skip
    return 0 if exact else 1


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the receiver did not become ready")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
