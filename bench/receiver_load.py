"""Webhook receiver on the real test bed's Kafka: signed GitHub pushes/s against a minimal
floor in the same run, latency at a fixed rate, nothing lost.

Both servers run as processes of their own on 127.0.0.1, on the event loop `gitops
receiver` uses (uvloop when installed), against the bed's Apache Kafka with idempotent
producers (the default), each on topics of this run's prefix (`rl-<run id>`):

- **floor**: the least a webhook endpoint can do, in a plain aiohttp handler: HMAC-SHA256
  check of the raw body, `json.loads`, one `acks=all` publish of the body with aiokafka
  (idempotence on, the receiver's batch size), answer 202 once acknowledged;
- **receiver**: `python -m gitops receiver` with one registered repository and app, so each
  push publishes a push event and a sync request and is answered 202;
- **receiver@NAME**, for each `--compare-tree DIR` (NAME is DIR's last part): the same
  receiver run from another source tree (`PYTHONPATH=DIR`), so a change's effect on the
  figure comes from one run, on the same broker at the same moment, not from two runs
  that a busy moment of the shared machine can tell apart more than the change does.

One client process (this one) sends bounded load of the real GitHub push sample, signed,
each with a unique delivery id:

1. max throughput: `--requests` pushes at `--concurrency`, the floor and the receiver in
   turn, `--rounds` times, each round starting one side later (medians; alternating so a
   busy moment of the shared machine does not land on one side only);
2. fixed rate: `--rate` pushes/s for `--seconds` to each, open loop (latency counted from
   each request's scheduled time, so a stall is not hidden);

then it reads the receiver's topics back and checks that every 202 is on them exactly once.

Under each phase it prints the CPU time each process (server, broker, this client) used
per request, from /proc: the server's figure is what tuning changes, and it moves less
than requests/s when other work shares the machine (the broker's includes other users of
the bed). The load average printed says how quiet the machine was.

    python bench/receiver_load.py [--testbed DIR] [--requests 10000] [--concurrency 64]
                                  [--rate 500] [--seconds 10] [--rounds 2]
                                  [--compare-tree DIR]...

`RECEIVER_PROFILE=FILE` runs the receiver under cProfile and writes its profile to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from onbed import (
    add_testbed_argument,
    bed_from,
    broker_gc,
    delete_topics,
    gc_between,
    machine,
    run_id,
)

from gitops.broker import free_port
from gitops.eventloop import event_loop_factory
from gitops.topics import ensure_topics
from receiver.publishing import MAX_BATCH_BYTES
from schemas import Topics, parse_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "webhook-samples" / "github" / "push-branch-update.json"
SECRET = "bench-secret"  # noqa: S105 - a throwaway secret for a local benchmark
PARTITIONS = 12
CONFIG = """
kafka: {{bootstrap: "{bootstrap}", topic_prefix: "{prefix}", partitions: {partitions}}}
clusters: {{local: {{in_cluster: true}}}}
repositories:
  hello: {{url: "git@github.com:codertocat/hello-world.git", webhook_secret: {{value: {secret}}}}}
apps:
  hello-web: {{repo: hello, branch: master, cluster: local}}
"""
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
Action = Callable[[], Awaitable[None]]


# --------------------------------------------------------------------------- the floor
def serve_floor(port: int, bootstrap: str, topic: str) -> None:
    """The floor server's process body: until SIGTERM."""

    async def serve() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            max_batch_size=MAX_BATCH_BYTES,
        )
        await producer.start()
        secret = SECRET.encode()

        async def push(request: web.Request) -> web.Response:
            body = await request.read()
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("X-Hub-Signature-256", ""), expected):
                return web.Response(status=401)
            payload = json.loads(body)
            key = payload["repository"]["clone_url"].encode()
            await producer.send_and_wait(topic, body, key=key)
            return web.Response(status=202)

        async def ready(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hooks/github", push)
        app.router.add_get("/readyz", ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await producer.stop()

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve())


# --------------------------------------------------------------------------- the client
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time per request of each process during one phase: who the bottleneck is."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.start = {name: cpu_seconds(pid) for name, pid in processes.items()}

    def per_request(self, count: int) -> dict[str, float]:
        """Microseconds of CPU per request, by process."""
        return {
            name: (cpu_seconds(pid) - self.start[name]) / count * 1e6
            for name, pid in self.processes.items()
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Client:
    """Signed pushes to one server, each with a delivery id of its own."""

    def __init__(self, session: aiohttp.ClientSession, url: str, body: bytes, name: str) -> None:
        self.session, self.url, self.body, self.name = session, url, body, name
        self.signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.accepted: list[str] = []

    async def push(self) -> None:
        self.sent += 1
        delivery = f"bench-{self.name}-{self.sent}-{os.getpid()}"
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": self.signature,
        }
        try:
            async with self.session.post(
                f"{self.url}/hooks/github", data=self.body, headers=headers
            ) as r:
                await r.read()
                self.statuses[r.status] += 1
                if r.status == 202:
                    self.accepted.append(delivery)
        except (aiohttp.ClientError, TimeoutError):
            self.statuses[0] += 1  # no answer: counted under 0 in "answers"


async def closed_loop(action: Action, total: int, concurrency: int) -> tuple[float, list[float]]:
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


async def open_loop(action: Action, rate: float, seconds: float) -> tuple[float, list[float]]:
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


async def count_deliveries(
    bootstrap: str, topic: str, expect: int, timeout: float = 60.0
) -> Counter[str]:
    """Delivery ids on `topic`, read from the beginning until `expect` or an idle 2 s."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: Counter[str] = Counter()
        deadline, last_new = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < 2.0:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for record in records:
                    seen[json.loads(record.value)["data"]["delivery_id"]] += 1
                    last_new = time.monotonic()
            if sum(seen.values()) >= expect and time.monotonic() - last_new > 0.5:
                break
        return seen
    finally:
        await consumer.stop()


async def wait_ready(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process, log: Path
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.returncode is None:
        try:
            async with session.get(f"{url}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    tail = await asyncio.to_thread(log.read_text, errors="replace")
    raise SystemExit(f"{url} did not become ready:\n{tail[-2000:]}")


@dataclass
class Phase:
    rps: float
    latencies: list[float]
    cpu: dict[str, float]
    gc: str


async def measure(
    pids: dict[str, int], count: int, load: Awaitable[tuple[float, list[float]]]
) -> Phase:
    """Run one phase of `count` requests (`load`), metering the CPU of `pids` and the
    broker's collection pauses."""
    meter = CpuMeter(pids)
    gc_before = await asyncio.to_thread(broker_gc, pids["broker"])
    rps, latencies = await load
    cpu = meter.per_request(count)
    gc = gc_between(gc_before, await asyncio.to_thread(broker_gc, pids["broker"]))
    return Phase(rps, latencies, cpu, gc)


def line(label: str, phase: Phase) -> str:
    p50, p99 = percentile(phase.latencies, 0.5), percentile(phase.latencies, 0.99)
    cpu = ", ".join(f"{name} {us:4.0f}" for name, us in phase.cpu.items())
    figures = f"{phase.rps:7.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:7.2f} ms"
    return f"{label:<44} {figures}  CPU/req us: {cpu}; {phase.gc}"


async def main(args: argparse.Namespace) -> int:
    bed = bed_from(args.testbed, kube=False)
    assert bed.kafka_bootstrap is not None  # bed_from checked
    bootstrap = bed.kafka_bootstrap
    run = run_id()
    prefix = f"rl-{run}"
    print(f"bed: {args.testbed}; run id {run}; {machine()}")
    body = SAMPLE.read_bytes()
    broker_pid = next(p.pid for p in bed.processes if p.name == "kafka")
    text = CONFIG.format(bootstrap=bootstrap, prefix=prefix, partitions=PARTITIONS, secret=SECRET)
    config = parse_config(text, environ={})
    topics = Topics(prefix)
    floor_topic = f"{prefix}.floor"
    processes: list[asyncio.subprocess.Process] = []
    tmp = tempfile.TemporaryDirectory(prefix="receiver-load-")
    folder = Path(tmp.name)
    try:
        await ensure_topics(config.kafka)
        try:
            await create_topic(bootstrap, floor_topic)
            config_path = folder / "gitops.yaml"
            config_path.write_text(text)
            receiver_port, floor_port = free_port(), free_port()
            profile = os.environ.get("RECEIVER_PROFILE")
            receiver_log, floor_log = folder / "receiver.log", folder / "floor.log"
            with receiver_log.open("wb") as log:
                receiver = await asyncio.create_subprocess_exec(
                    sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []),
                    "-m", "gitops", "receiver", "--config", str(config_path),
                    "--host", "127.0.0.1", "--port", str(receiver_port), "--log-level", "WARNING",
                    cwd=ROOT, stderr=log, env={**os.environ, "GITOPS_KAFKA_BOOTSTRAP": bootstrap},
                )  # fmt: skip
            processes.append(receiver)
            with floor_log.open("wb") as log:
                floor = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--serve-floor", str(floor_port),
                    "--bootstrap", bootstrap, "--topic", floor_topic, cwd=ROOT, stderr=log,
                )  # fmt: skip
            processes.append(floor)
            others: dict[str, tuple[asyncio.subprocess.Process, int, Path]] = {}
            for tree in args.compare_tree:
                name, port = f"receiver@{tree.name}", free_port()
                other_log = folder / f"{name}.log"
                with other_log.open("wb") as log:
                    other = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "gitops", "receiver", "--config", str(config_path),
                        "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING",
                        cwd=tree, stderr=log,
                        env={**os.environ, "GITOPS_KAFKA_BOOTSTRAP": bootstrap,
                             "PYTHONPATH": str(tree)},
                    )  # fmt: skip
                processes.append(other)
                others[name] = (other, port, other_log)
            # Idle connections are dropped before the receiver's own keep-alive limit (10 s,
            # receiver.header_timeout) while the other side is measured, so none is reused
            # just as the server closes it.
            connector = aiohttp.TCPConnector(limit=args.concurrency, keepalive_timeout=5)
            async with aiohttp.ClientSession(
                connector=connector, timeout=REQUEST_TIMEOUT
            ) as session:
                receiver_url = f"http://127.0.0.1:{receiver_port}"
                floor_url = f"http://127.0.0.1:{floor_port}"
                await wait_ready(session, receiver_url, receiver, receiver_log)
                await wait_ready(session, floor_url, floor, floor_log)
                ours = Client(session, receiver_url, body, "receiver")
                base = Client(session, floor_url, body, "floor")
                sides = {"floor": (base, floor.pid), "receiver": (ours, receiver.pid)}
                for name, (other, port, other_log) in others.items():
                    other_url = f"http://127.0.0.1:{port}"
                    await wait_ready(session, other_url, other, other_log)
                    sides[name] = (Client(session, other_url, body, name), other.pid)
                for client, _ in sides.values():  # warm-up: connections, metadata, first batches
                    await closed_loop(client.push, min(500, args.requests), args.concurrency)
                pids = {"server": 0, "broker": broker_pid, "client": os.getpid()}
                maximum: dict[str, list[Phase]] = {name: [] for name in sides}
                names = list(sides)
                for round_ in range(args.rounds):
                    # Each round starts one side later, so no side is always measured first.
                    shift = round_ % len(names)
                    for name in names[shift:] + names[:shift]:
                        client, pid = sides[name]
                        phase = await measure(
                            {**pids, "server": pid},
                            args.requests,
                            closed_loop(client.push, args.requests, args.concurrency),
                        )
                        maximum[name].append(phase)
                        print(line(f"max throughput, {name} (c={args.concurrency})", phase))
                fixed: dict[str, Phase] = {}
                count = int(args.rate * args.seconds)
                for name, (client, pid) in sides.items():
                    fixed[name] = await measure(
                        {**pids, "server": pid},
                        count,
                        open_loop(client.push, args.rate, args.seconds),
                    )
                    print(line(f"fixed rate {args.rate:.0f} req/s, {name}", fixed[name]))
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                await asyncio.wait_for(process.wait(), timeout=30)
        receivers = [client for name, (client, _) in sides.items() if name != "floor"]
        accepted = Counter(delivery for client in receivers for delivery in client.accepted)
        expect = len(accepted)
        pushes = await count_deliveries(bootstrap, topics.push_events, expect)
        requests = await count_deliveries(bootstrap, topics.sync_requests, expect)
    finally:  # the run's topics go, whatever happened
        await delete_topics(bootstrap, prefix)
        tmp.cleanup()

    exact = pushes == accepted and requests == accepted
    floor_rps = statistics.median(p.rps for p in maximum["floor"])
    ours_rps = statistics.median(p.rps for p in maximum["receiver"])
    p99 = percentile(fixed["receiver"].latencies, 0.99)
    print(f"payload: {SAMPLE.name} ({len(body)} bytes), signed, unique delivery ids")
    answers = ", ".join(f"{name} {dict(client.statuses)}" for name, (client, _) in sides.items())
    print(f"answers: {answers}")
    print(
        f"read back: push-events {sum(pushes.values())}, sync-requests {sum(requests.values())},"
        f" 202s {len(accepted)}; each 202'd delivery exactly once: {exact}"
    )
    print(
        f"SUMMARY receiver {ours_rps:.0f} req/s vs floor {floor_rps:.0f} req/s: "
        f"{ours_rps / floor_rps:.2f}x (target >= 0.6x); p99 at {args.rate:.0f} req/s "
        f"{p99:.1f} ms (target < 50)"
    )
    for name in others:
        other_rps = statistics.median(p.rps for p in maximum[name])
        other_p99 = percentile(fixed[name].latencies, 0.99)
        print(
            f"COMPARE {name} {other_rps:.0f} req/s ({other_rps / floor_rps:.2f}x the floor):"
            f" receiver {ours_rps / other_rps - 1:+.1%} req/s; p99 at {args.rate:.0f} req/s"
            f" {other_p99:.1f} ms against the receiver's {p99:.1f} ms"
        )
    print(f"after the run: {machine()}")
    return 0 if exact else 1


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_testbed_argument(parser)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--compare-tree",
        type=lambda text: Path(text).resolve(),
        action="append",
        default=[],
        metavar="DIR",
        help="also run the receiver from this source tree, as a side of its own",
    )
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor, args.bootstrap, args.topic)
        sys.exit(0)
    sys.exit(asyncio.run(asyncio.wait_for(main(args), timeout=900)))
