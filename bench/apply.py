"""Apply benchmark: the syncer's reconcile path vs `kubectl apply --server-side`.

An app of 1,000 mixed-kind objects (ConfigMaps, Secrets, Services, ServiceAccounts,
Deployments, plus their Namespace) is applied to a fresh emulator process
(`python -m devcluster`) by each side: first sync, then a no-change resync. Our side
runs the real reconcile (render → plan → dry-run of everything → apply → inventory;
health wait off, kubectl does not wait either) on the event loop and collector settings
`gitops syncer` uses. kubectl gets the same manifests as a directory, with our field
manager and `--force-conflicts`. Only 127.0.0.1 is used.

Besides wall times it prints the CPU seconds each side cost (client + emulator process),
and the load average: on a shared 2-core machine other work takes cores away, and then
wall-time ratios swing while CPU figures stay comparable.

    python bench/apply.py [--objects 1000] [--rounds 5]

Each round starts fresh emulators; the figures are medians over the rounds (a single
round on a shared 2-core machine swings by ±10%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gitops.eventloop import event_loop_factory
from schemas import AppConfig, ClusterConfig
from schemas.types import CommitSha
from syncer.inventory import InventoryStore
from syncer.kube import Cluster
from syncer.manifests import RenderCache
from syncer.reconcile import ReconcileOptions, Reconciler
from syncer.service import settle_heap

KINDS = ("ConfigMap", "Secret", "Service", "ServiceAccount", "Deployment")


def manifest(kind: str, n: int) -> str:
    name = f"{kind.lower()}-{n}"
    head = f"metadata:\n  name: {name}\n  labels: {{app: bench, idx: '{n}'}}\n"
    if kind == "ConfigMap":
        return f"apiVersion: v1\nkind: ConfigMap\n{head}data:\n  key: value-{n}\n  mode: bench\n"
    if kind == "Secret":
        return f"apiVersion: v1\nkind: Secret\n{head}type: Opaque\nstringData:\n  token: t-{n}\n"
    if kind == "Service":
        return (
            f"apiVersion: v1\nkind: Service\n{head}spec:\n  selector: {{app: d-{n}}}\n"
            "  ports:\n    - {port: 80, targetPort: 8080, protocol: TCP}\n"
        )
    if kind == "ServiceAccount":
        return f"apiVersion: v1\nkind: ServiceAccount\n{head}"
    return (
        f"apiVersion: apps/v1\nkind: Deployment\n{head}spec:\n  replicas: 1\n"
        f"  selector:\n    matchLabels: {{app: d-{n}}}\n  template:\n"
        f"    metadata:\n      labels: {{app: d-{n}}}\n    spec:\n      containers:\n"
        f"        - name: main\n          image: nginx:1.27\n"
    )


def build_app(objects: int, namespace: str) -> dict[str, bytes]:
    """`objects` manifests in files of 10 documents, plus the Namespace."""
    docs = [manifest(KINDS[i % len(KINDS)], i) for i in range(objects)]
    namespace_doc = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
    files = {"00-namespace.yaml": namespace_doc.encode()}
    for start in range(0, objects, 10):
        files[f"objects-{start:05d}.yaml"] = "---\n".join(docs[start : start + 10]).encode()
    return files


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def start_emulator(kubeconfig: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devcluster",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    if "serving" not in line:
        proc.kill()
        raise RuntimeError(f"devcluster did not start: {line!r}")
    return proc


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    await proc.wait()


async def ours(
    files: dict[str, bytes], namespace: str, work: Path
) -> tuple[float, float, int, float]:
    """(first sync s, resync s, objects, CPU s of the first sync: syncer + emulator)."""
    kubeconfig = work / "ours.kubeconfig"
    proc = await start_emulator(kubeconfig)
    try:
        cluster = await Cluster.connect("bench", ClusterConfig(kubeconfig=str(kubeconfig)))
        async with cluster:
            reconciler = Reconciler(cluster, InventoryStore(cluster, "gitops-system"))
            settle_heap()  # as `gitops syncer` does once it has started
            app = AppConfig(repo="bench", cluster="bench", namespace=namespace)
            options = ReconcileOptions(health_timeout=0)
            commit = CommitSha("0" * 40)
            renders = RenderCache()  # as the worker holds one
            timings, cpu = [], []
            for _ in range(2):
                cpu_before = own_cpu() + process_cpu(proc.pid)
                started = time.perf_counter()
                manifests = renders.render(files)
                result = await reconciler.reconcile("bench", app, commit, manifests, options)
                timings.append(time.perf_counter() - started)
                cpu.append(own_cpu() + process_cpu(proc.pid) - cpu_before)
            actions = {o.action for o in result.objects}
            assert actions == {"unchanged"}, actions
            return timings[0], timings[1], len(result.objects), cpu[0]
    finally:
        await stop(proc)


async def kubectl(files: dict[str, bytes], work: Path) -> tuple[float, float, float]:
    """(first apply s, re-apply s, CPU s of the first apply: kubectl + emulator)."""
    kubeconfig = work / "kubectl.kubeconfig"
    manifests = work / "manifests"
    manifests.mkdir(exist_ok=True)
    for name, data in files.items():
        (manifests / name).write_bytes(data)
    proc = await start_emulator(kubeconfig)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(work)}
    try:
        timings, cpu = [], []
        for _ in range(2):
            cpu_before = children_cpu() + process_cpu(proc.pid)
            started = time.perf_counter()
            child = await asyncio.create_subprocess_exec(
                "kubectl",
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=gitops-pipeline",
                "-f",
                str(manifests),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
            _, err = await child.communicate()
            timings.append(time.perf_counter() - started)
            cpu.append(children_cpu() + process_cpu(proc.pid) - cpu_before)
            if child.returncode != 0:
                raise RuntimeError(f"kubectl failed: {err.decode()[-500:]}")
        return timings[0], timings[1], cpu[0]
    finally:
        await stop(proc)


async def main(objects: int, rounds: int) -> None:
    namespace = "bench"
    files = build_app(objects, namespace)
    first_ours, resync_ours, first_kubectl, resync_kubectl = [], [], [], []
    cpu_ours, cpu_kubectl = [], []
    load_before = os.getloadavg()[0]
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
            a, b, count, cpu_a = await ours(files, namespace, Path(tmp))
            c, d, cpu_c = await kubectl(files, Path(tmp))
        first_ours.append(a)
        resync_ours.append(b)
        first_kubectl.append(c)
        resync_kubectl.append(d)
        cpu_ours.append(cpu_a)
        cpu_kubectl.append(cpu_c)
    load_after = os.getloadavg()[0]
    m = statistics.median
    print(f"objects: {count} ({objects} + namespace), kinds: {', '.join(KINDS)}; rounds: {rounds}")
    print(f"{'':<22}{'syncer':>10}{'kubectl':>10}{'ratio':>9}")
    r1 = m(first_kubectl) / m(first_ours)
    r2 = m(resync_kubectl) / m(resync_ours)
    print(f"{'first sync (s)':<22}{m(first_ours):>10.3f}{m(first_kubectl):>10.3f}{r1:>8.1f}x")
    print(
        f"{'no-change resync (s)':<22}{m(resync_ours):>10.3f}{m(resync_kubectl):>10.3f}{r2:>8.1f}x"
    )
    r3 = m(cpu_kubectl) / m(cpu_ours)
    print(
        f"{'first sync CPU (s)':<22}{m(cpu_ours):>10.3f}{m(cpu_kubectl):>10.3f}{r3:>8.1f}x"
        "   (client + emulator process)"
    )
    print(
        f"load average (1 min) before/after: {load_before:.2f} / {load_after:.2f}, cores: "
        f"{os.cpu_count()}"
    )
    print(
        f"\nSUMMARY first-sync {r1:.1f}x faster than kubectl (target >=2x), "
        f"no-change resync {r2:.1f}x faster (target >=5x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # The loop `gitops syncer` runs on (uvloop when installed); kubectl is a child process.
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main(args.objects, args.rounds))
