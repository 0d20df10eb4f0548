"""Burst at scale and scale-out: 1,000 apps in one monorepo, one push that touches them all.

The shape is the Flux benchmark's: per app a Deployment scaled to 0, a ServiceAccount, a
Service and a ConfigMap, each app a directory `apps/aNNNN` of one repository. The parts
are the ones a user runs: the bed's Apache Kafka and kube-apiserver (HTTPS, admin client
certificate), a git server (`git http-backend` behind `gitops.gitserver`) fed by the `git`
CLI, one `gitops receiver` and N `gitops syncer` processes in one consumer group, with the
default settings (`syncer.concurrency` 8, 12 partitions) and periodic checks at 1 h, so
only the pushes cause work.

For each syncer count (a fresh run of its own: topics, group, Namespaces, repository):

1. start: the repository holds one ConfigMap per app; the syncers start and sync all N
   apps (their first poll finds every app unapplied) — set-up, timed for reference;
2. burst: one push adds the Deployment, ServiceAccount and Service to every app and
   changes its ConfigMap (3 creations and 1 update per app), announced by one signed
   GitHub webhook naming every changed file: time from `git push` until the first and
   the last app reports `gitops.sync.succeeded` of that commit;
3. update: one push changes every app's ConfigMap and Deployment again.

Before the runs (`--no-floor` skips it), the baseline: the burst's objects applied by
`kubectl apply --server-side` into a Namespace of their own, and the time until the
cluster's controllers report every Deployment ready by the syncer's health rule. A
burst whose syncs wait for health (the default `syncer.health_timeout`) cannot end
before that, whoever applies it: on a default kube-controller-manager (client QPS 20) the
Deployment controller's own status writes set the pace.

It prints, per phase and syncer count: first and last app, CPU per app (the syncer and
receiver processes; the API server and etcd beside them), each syncer's share of the apps
(from the outcome's `source`), git requests per app (counted by the git server) and API
requests per app (from the syncers' `gitops_syncer_api_requests` metric, when they have
it). Targets (issue 14): the burst's last app within 60 s with 1 and with 2 syncers; each
syncer's share within 15% of even; requests per app not growing with syncers.

    python bench/burst.py [--testbed DIR] [--apps 1000] [--syncers 1,2]

`--cluster emulator --latency-ms 5` runs the same against the emulator (`python -m
devcluster`, started here) with 5 ms added to every API request: the figure for
"more syncers must finish faster" when each request waits on the server rather than on
its CPU (`--syncers 1,2,4`). Every wait is bounded (`--timeout`, per phase).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
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

from gitops.broker import free_port
from gitops.demo import git, github_push_payload
from gitops.gitserver import GitHttpServer
from gitops.processes import ChildProcess
from gitops.topics import ensure_topics
from schemas import Topics, load_config
from schemas.events import SyncFailed, SyncSucceeded, parse_event
from syncer.health import assess
from testbed.bed import Bed

SECRET = "bench-secret"  # noqa: S105 - a throwaway secret for 127.0.0.1
PARTITIONS = 12  # the default of `kafka.partitions`
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the monorepo


def app_files(app: str, namespace: str, version: int, *, full: bool) -> dict[str, str]:
    """The files of one app at `version`; without `full`, only its ConfigMap."""
    files = {
        f"apps/{app}/configmap.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}\n"
            f"  namespace: {namespace}\ndata:\n  version: '{version}'\n"
        )
    }
    if not full:
        return files
    labels = f"app: {app}"
    files[f"apps/{app}/deployment.yaml"] = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {namespace}
spec:
  replicas: 0
  selector:
    matchLabels: {{{labels}}}
  template:
    metadata:
      labels: {{{labels}}}
      annotations: {{version: '{version}'}}
    spec:
      serviceAccountName: {app}
      containers:
      - name: app
        image: registry.example/{app}:{version}
        ports: [{{containerPort: 8080}}]
"""
    files[f"apps/{app}/serviceaccount.yaml"] = (
        f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {app}\n"
        f"  namespace: {namespace}\n"
    )
    files[f"apps/{app}/service.yaml"] = f"""\
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {namespace}
spec:
  selector: {{{labels}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
    return files


def names(apps: int) -> list[str]:
    return [f"a{i:04d}" for i in range(apps)]


def config_text(
    *,
    bootstrap: str,
    prefix: str,
    kubeconfig: Path,
    url: str,
    namespace: str,
    apps: int,
    health_timeout: str | None,
    concurrency: int | None,
) -> str:
    health = f", health_timeout: {health_timeout}" if health_timeout is not None else ""
    if concurrency is not None:
        health += f", concurrency: {concurrency}"
    lines = [
        f"kafka: {{bootstrap: '{bootstrap}', topic_prefix: {prefix}, partitions: {PARTITIONS}}}",
        f"clusters: {{bed: {{kubeconfig: {kubeconfig}}}}}",
        f"repositories: {{mono: {{url: '{url}', webhook_secret: {{value: {SECRET}}}}}}}",
        f"syncer: {{group_id: {prefix}, inventory_namespace: {namespace}-inventory{health}}}",
        "apps:",
    ]
    lines += [
        f"  {app}: {{repo: mono, path: apps/{app}, cluster: bed, namespace: {namespace},"
        " interval: 1h}"
        for app in names(apps)
    ]
    return "\n".join(lines) + "\n"


async def write_and_commit(copy: Path, files: dict[str, str], message: str) -> tuple[str, str]:
    """(commit before, commit after) of writing `files` into the working copy."""
    before = await git(copy, "rev-parse", "HEAD")
    for path, text in files.items():
        target = copy / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    await git(copy, "add", "--all")
    await git(copy, "commit", "--quiet", "-m", message)
    return before, await git(copy, "rev-parse", "HEAD")


# --------------------------------------------------------------------------- what we read


@dataclass
class Seen:
    at: float
    """perf_counter() when this process read the outcome."""
    syncer: str
    seconds: float
    """The sync as its syncer timed it (`duration_ms`)."""


class Outcomes:
    """Sync outcomes by (app, commit), read from where the topic ended when started."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        self._tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.succeeded: dict[tuple[str, str], Seen] = {}
        self.failed: list[str] = []

    async def __aenter__(self) -> Outcomes:
        await self._consumer.start()
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_end(*self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def until(self, apps: list[str], commit: str, timeout: float) -> list[Seen]:
        """The outcomes of every app at `commit`, in the order they were read."""
        deadline = time.monotonic() + timeout
        wanted = {(app, commit) for app in apps}
        while not wanted <= self.succeeded.keys():
            if time.monotonic() > deadline:
                missing = sorted(a for a, c in wanted - self.succeeded.keys())
                failures = "; ".join(self.failed[-3:])
                raise TimeoutError(
                    f"{len(missing)} of {len(apps)} apps without success after {timeout:.0f} s"
                    f" (e.g. {missing[:3]}); last failures: {failures or 'none'}"
                )
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    self._read(record.value, now)
        return sorted((self.succeeded[k] for k in wanted), key=lambda s: s.at)

    def _read(self, raw: bytes | None, now: float) -> None:
        if raw is None:
            return
        event = parse_event(raw)
        if isinstance(event, SyncSucceeded) and event.data.commit:
            syncer = event.source.rsplit("/", 1)[-1]
            self.succeeded.setdefault(
                (event.data.app, event.data.commit),
                Seen(now, syncer, event.data.duration_ms / 1000),
            )
        elif isinstance(event, SyncFailed):
            self.failed.append(f"{event.data.app}: {event.data.error}")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a live process so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


_REQUESTS = re.compile(r"^gitops_syncer_api_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.M)


async def api_requests(session: aiohttp.ClientSession, ports: list[int]) -> float | None:
    """Requests the syncers sent to API servers so far; None when they do not count them."""
    total, found = 0.0, False
    for port in ports:
        try:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as answer:
                text = await answer.text()
        except aiohttp.ClientConnectionError:
            continue  # not serving yet: a syncer that just started has sent nothing
        for _labels, value in _REQUESTS.findall(text):
            total += float(value)
            found = True
    return total if found else None


# --------------------------------------------------------------------------- one run


@dataclass
class Phase:
    name: str
    syncers: int
    first: float
    last: float
    cpu_ours: float
    cpu_server: float
    shares: Counter[str]
    git_requests: int
    api_requests: float | None
    sync_p50: float
    sync_max: float


@dataclass
class Stack:
    """The processes and counters of one run, so a phase can read them before and after."""

    syncers: list[ChildProcess]
    receiver: ChildProcess
    ports: list[int]
    server_pids: list[int]
    git: GitHttpServer
    session: aiohttp.ClientSession
    phases: list[Phase] = field(default_factory=list)

    def cpu(self) -> tuple[float, float]:
        ours = sum(cpu_seconds(p.pid) for p in [*self.syncers, self.receiver])
        return ours, sum(cpu_seconds(pid) for pid in self.server_pids)

    async def measure(
        self,
        name: str,
        outcomes: Outcomes,
        apps: list[str],
        commit: str,
        started: float,
        timeout: float,
    ) -> Phase:
        cpu_before, git_before = self.cpu(), self.git.requests
        api_before = await api_requests(self.session, self.ports)
        seen = await outcomes.until(apps, commit, timeout)
        cpu_after = self.cpu()
        api_after = await api_requests(self.session, self.ports)
        phase = Phase(
            name=name,
            syncers=len(self.syncers),
            first=seen[0].at - started,
            last=seen[-1].at - started,
            cpu_ours=cpu_after[0] - cpu_before[0],
            cpu_server=cpu_after[1] - cpu_before[1],
            shares=Counter(s.syncer for s in seen),
            git_requests=self.git.requests - git_before,
            api_requests=None if api_after is None else api_after - (api_before or 0.0),
            sync_p50=statistics.median(s.seconds for s in seen),
            sync_max=max(s.seconds for s in seen),
        )
        self.phases.append(phase)
        progress(f"{name} with {phase.syncers} syncer(s): last app after {phase.last:.1f} s")
        return phase


async def push_and_announce(
    copy: Path,
    url: str,
    hook: str,
    session: aiohttp.ClientSession,
    files: dict[str, str],
    message: str,
) -> tuple[str, float]:
    """Commit `files`, `git push` and send the webhook; (the commit, when the push began)."""
    before, after = await write_and_commit(copy, files, message)
    lines = await git(copy, "diff", "--name-status", "--no-renames", before, after)
    changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
    for line in lines.splitlines():
        status, path = line.split("\t", 1)
        changes.setdefault(status[0], []).append(path)
    body = json.dumps(
        github_push_payload(
            repo_url=url,
            before=before,
            after=after,
            changed=changes["M"],
            added=changes["A"],
            removed=changes["D"],
            message=message,
        )
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    started = time.perf_counter()
    await git(copy, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    async with session.post(hook, data=body, headers=headers) as answer:
        if answer.status != 202:
            raise RuntimeError(f"webhook answered {answer.status}: {await answer.text()}")
    return after, started


async def one_run(
    *,
    bootstrap: str,
    kubeconfig: Path,
    server_pids: list[int],
    apps: int,
    syncers: int,
    timeout: float,
    work: Path,
    health_timeout: str | None,
    concurrency: int | None,
) -> list[Phase]:
    run = run_id()
    prefix, namespace = f"burst-{run}", f"burst-{run}"
    all_apps = names(apps)
    logs = work / "logs"
    logs.mkdir(parents=True)
    try:
        async with GitHttpServer(work / "git") as server, aiohttp.ClientSession() as session:
            server.create_repo("mono")
            url = server.repo_url("mono")
            config_file = work / "gitops.yaml"
            config_file.write_text(
                config_text(
                    bootstrap=bootstrap,
                    prefix=prefix,
                    kubeconfig=kubeconfig,
                    url=url,
                    namespace=namespace,
                    apps=apps,
                    health_timeout=health_timeout,
                    concurrency=concurrency,
                )
            )
            config = load_config(config_file)
            await ensure_topics(config.kafka)
            await kubectl(kubeconfig, "create", "namespace", namespace)
            await kubectl(kubeconfig, "create", "namespace", f"{namespace}-inventory")
            copy = work / "copy"
            copy.mkdir()
            await git(copy, "init", "--quiet", "--initial-branch=main")
            await git(copy, "remote", "add", "origin", url)
            await git(copy, "commit", "--quiet", "--allow-empty", "-m", "empty")
            files: dict[str, str] = {}
            for app in all_apps:
                files |= app_files(app, namespace, 0, full=False)
            _, start_commit = await write_and_commit(copy, files, "one ConfigMap per app")
            await git(copy, "push", "--quiet", "origin", "HEAD:refs/heads/main")

            env = {"GITOPS_KAFKA_BOOTSTRAP": bootstrap}
            hook_port, ports = free_port(), [free_port() for _ in range(syncers)]
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
                env=env,
            )
            members = [
                ChildProcess(
                    f"s{i + 1}",
                    [
                        "syncer",
                        "--config",
                        str(config_file),
                        "--id",
                        f"s{i + 1}",
                        "--http-port",
                        str(port),
                        "--log-level",
                        os.environ.get("BURST_LOG_LEVEL", "WARNING"),
                    ],
                    log_dir=logs,
                    env=env,
                )
                for i, port in enumerate(ports)
            ]
            stack = Stack(members, receiver, ports, server_pids, server, session)
            hook = f"http://127.0.0.1:{hook_port}/hooks/github"
            async with Outcomes(bootstrap, Topics(prefix).sync_events) as outcomes:
                await receiver.start()
                try:
                    started = time.perf_counter()
                    await asyncio.gather(*(m.start() for m in members))
                    await stack.measure("start", outcomes, all_apps, start_commit, started, timeout)
                    for version, phase in ((1, "burst"), (2, "update")):
                        files = {}
                        for app in all_apps:
                            files |= app_files(app, namespace, version, full=True)
                        commit, started = await push_and_announce(
                            copy, url, hook, session, files, f"{phase}: every app"
                        )
                        await stack.measure(phase, outcomes, all_apps, commit, started, timeout)
                except TimeoutError as exc:
                    tails = "\n".join(f"--- {m.name}\n{m.tail(8)}" for m in members)
                    raise RuntimeError(f"{exc}\n{tails}") from exc
                finally:
                    await asyncio.gather(*(m.stop(timeout=20) for m in members))
                    await receiver.stop()
            return stack.phases
    finally:
        await asyncio.gather(
            delete_topics(bootstrap, prefix),
            delete_namespaces(
                kubectl_binary(), kubeconfig, [namespace, f"{namespace}-inventory"], wait=False
            ),
        )


async def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> bytes:
    """Run kubectl against `kubeconfig`; its output, or an error with what it said."""
    process = await asyncio.create_subprocess_exec(
        kubectl_binary(),
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    if process.returncode:
        raise RuntimeError(f"kubectl {' '.join(args)}: {err.decode().strip()}")
    return out


# --------------------------------------------------------------------------- the floor


async def controllers_floor(kubeconfig: Path, apps: int, work: Path, timeout: float) -> str:
    """The same objects applied by `kubectl apply --server-side` into a Namespace of their
    own, then the time until the cluster's controllers report every Deployment ready by
    the syncer's own rule (`syncer.health.assess`): the least a health-waiting burst
    can take on this cluster, whoever applies it."""
    namespace = f"burst-floor-{run_id()}"
    folder = work / "floor"
    folder.mkdir()
    for app in names(apps):
        for path, text in app_files(app, namespace, 1, full=True).items():
            (folder / path.replace("/", "-")).write_text(text)
    await kubectl(kubeconfig, "create", "namespace", namespace)
    try:
        started = time.perf_counter()
        await kubectl(
            kubeconfig, "apply", "--server-side", "-n", namespace, "-f", str(folder), timeout=300
        )
        applied = time.perf_counter() - started
        deadline = started + timeout
        while True:
            listing = await kubectl(kubeconfig, "get", "deployments", "-n", namespace, "-o", "json")
            items = json.loads(listing)["items"]
            ready = sum(1 for d in items if assess(d)[0] == "ready")
            if ready == apps:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"floor: {ready}/{apps} Deployments ready after {timeout} s")
            await asyncio.sleep(1.0)
        healthy = time.perf_counter() - started
    finally:
        await delete_namespaces(kubectl_binary(), kubeconfig, [namespace], wait=False)
    return (
        f"controllers' floor: kubectl apply --server-side of the {apps * 4} objects"
        f" {applied:.1f} s; every Deployment ready (observed, as the syncer's health check"
        f" reads it) {healthy:.1f} s after the apply began"
    )


# --------------------------------------------------------------------------- the emulator


class Emulator:
    """`python -m devcluster` on a free port, each API request delayed by `latency_ms`."""

    def __init__(self, work: Path, latency_ms: float) -> None:
        self.kubeconfig = work / "emulator.kubeconfig"
        self._port = free_port()
        self._latency = latency_ms / 1000
        self._log = work / "emulator.log"
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Emulator:
        with self._log.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "devcluster",
                "--port",
                str(self._port),
                "--kubeconfig",
                str(self.kubeconfig),
                stdout=log,
                stderr=log,
            )
        base = f"http://127.0.0.1:{self._port}"
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(f"{base}/readyz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the emulator did not start; see {self._log}")
                await asyncio.sleep(0.2)
            fault = {
                "verb": "*",
                "resource": "*",
                "count": 10**9,
                "code": 0,
                "delay": self._latency,
                "message": "added latency",
            }
            async with session.post(f"{base}/_devcluster/faults", json=fault) as answer:
                answer.raise_for_status()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), 20)


# --------------------------------------------------------------------------- report


def report(phases: list[Phase], apps: int, where: str) -> None:
    print(f"\n{apps} apps of 4 objects each, {where}")
    head = (
        f"{'phase':<8}{'syncers':>8}{'first s':>9}{'last s':>9}{'CPU ms/app':>12}"
        f"{'server ms/app':>15}{'git req/app':>13}{'API req/app':>13}{'sync p50/max s':>16}"
        "  share per syncer"
        " (spread from even)"
    )
    print(head)
    for p in phases:
        even = apps / p.syncers
        spread = max(abs(n - even) / even for n in p.shares.values()) if p.shares else 0.0
        shares = ", ".join(f"{k} {v}" for k, v in sorted(p.shares.items()))
        api = "-" if p.api_requests is None else f"{p.api_requests / apps:.1f}"
        print(
            f"{p.name:<8}{p.syncers:>8}{p.first:>9.1f}{p.last:>9.1f}"
            f"{p.cpu_ours / apps * 1000:>12.1f}{p.cpu_server / apps * 1000:>15.1f}"
            f"{p.git_requests / apps:>13.2f}{api:>13}{f'{p.sync_p50:.1f}/{p.sync_max:.1f}':>16}"
            f"  {shares} (±{spread:.0%})"
        )
    for name in ("burst", "update"):
        runs = [p for p in phases if p.name == name]
        if runs:
            ratio = " ".join(
                f"{p.syncers}:{p.last:.1f}s({runs[0].last / p.last:.2f}x)" for p in runs
            )
            met = all(p.last <= 60 for p in runs)
            print(f"SUMMARY {name}: last app {ratio}; target <= 60 s {'met' if met else 'MISSED'}")


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


async def one_round(args: argparse.Namespace, bed: Bed, work: Path, syncers: int) -> list[Phase]:
    """One run with `syncers` syncers, against the bed's API server or the emulator."""
    assert bed.kafka_bootstrap is not None  # bed_from checked
    if args.cluster == "bed":
        assert bed.kubeconfig is not None
        server_pids = [p.pid for p in bed.processes if p.name in ("kube-apiserver", "etcd")]
        return await one_run(
            bootstrap=bed.kafka_bootstrap,
            kubeconfig=bed.kubeconfig,
            server_pids=server_pids,
            apps=args.apps,
            syncers=syncers,
            timeout=args.timeout,
            work=work,
            health_timeout=args.health_timeout,
            concurrency=args.concurrency,
        )
    async with Emulator(work, args.latency_ms) as emulator:
        return await one_run(
            bootstrap=bed.kafka_bootstrap,
            kubeconfig=emulator.kubeconfig,
            server_pids=[emulator.pid] if emulator.pid else [],
            apps=args.apps,
            syncers=syncers,
            timeout=args.timeout,
            work=work,
            health_timeout=args.health_timeout,
            concurrency=args.concurrency,
        )


async def main_async(args: argparse.Namespace) -> None:
    bed = bed_from(args.testbed, kube=args.cluster == "bed")
    assert bed.kafka_bootstrap is not None  # bed_from checked
    counts = [int(n) for n in args.syncers.split(",")]
    phases: list[Phase] = []
    health = args.health_timeout or "default"
    slots = args.concurrency or "default"
    print(
        f"bed: {args.testbed}; syncer.health_timeout {health}, syncer.concurrency {slots};"
        f" {machine()}"
    )
    floor = None
    if args.floor and args.cluster == "bed":
        assert bed.kubeconfig is not None
        with tempfile.TemporaryDirectory(prefix="gitops-burst-") as tmp:
            floor = await controllers_floor(bed.kubeconfig, args.apps, Path(tmp), args.timeout)
        progress(floor)
    for syncers in counts:
        with tempfile.TemporaryDirectory(prefix="gitops-burst-") as tmp:
            work = Path(tmp)
            try:
                phases += await one_round(args, bed, work, syncers)
            finally:
                if args.logs and (work / "logs").exists():
                    shutil.copytree(
                        work / "logs", args.logs / f"{args.cluster}-{syncers}", dirs_exist_ok=True
                    )
        progress(f"after {syncers} syncer(s): {machine()}")
    where = (
        "the bed's kube-apiserver"
        if args.cluster == "bed"
        else f"the emulator with {args.latency_ms:g} ms added per request"
    )
    report(phases, args.apps, where)
    if floor is not None:
        print(floor)
    print(f"after the run: {machine()}")
    if any(p.name == "burst" for p in phases):
        lasts = [p.last for p in phases if p.name == "burst"]
        print(f"burst median of last-app times: {statistics.median(lasts):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_testbed_argument(parser)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--syncers", default="1,2", help="syncer counts, one run each")
    parser.add_argument("--cluster", choices=["bed", "emulator"], default="bed")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="emulator only")
    parser.add_argument("--timeout", type=float, default=300.0, help="per phase, seconds")
    parser.add_argument("--logs", type=Path, help="copy the processes' logs here")
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first time kubectl's apply of the same objects and the controllers' status (bed)",
    )
    parser.add_argument(
        "--concurrency", type=int, help="syncer.concurrency for the run (default: the product's)"
    )
    parser.add_argument(
        "--health-timeout",
        help="syncer.health_timeout for the run (default: the product's, 60s; 0 reports an"
        " app succeeded once applied, without waiting for its Deployment, as Flux's"
        " default `wait: false` does)",
    )
    args = parser.parse_args()
    if args.apps < 1:
        parser.error("--apps must be at least 1")
    runs = len(args.syncers.split(","))
    asyncio.run(asyncio.wait_for(main_async(args), timeout=runs * (3 * args.timeout + 180)))


if __name__ == "__main__":
    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")
    main()
