"""A bed in a folder: `up` builds what is missing, starts the parts and writes what clients
need; `down` stops exactly what `up` recorded; `status` says what still runs.

The folder holds everything of one bed: `kubeconfig`, `kafka-bootstrap` (one line,
`host:port`), `state.json` (pids, ports, versions), certificates, data and logs.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from testbed import building, versions
from testbed.kafka import start_kafka
from testbed.kube import start_kube
from testbed.processes import Running, stop

Only = Literal["kube", "kafka"] | None


@dataclass(frozen=True)
class Bed:
    """What `up` wrote: the paths clients read, and the processes it started."""

    folder: Path
    processes: tuple[Running, ...]
    kubeconfig: Path | None
    kafka_bootstrap: str | None

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def running(self) -> dict[str, bool]:
        return {process.name: process.alive() for process in self.processes}

    def healthy(self) -> bool:
        return bool(self.processes) and all(self.running().values())

    def summary(self) -> dict[str, Any]:
        return {
            "dir": str(self.folder),
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "kafka_bootstrap": str(self.folder / "kafka-bootstrap")
            if self.kafka_bootstrap
            else None,
            "bootstrap": self.kafka_bootstrap,
            "state": str(self.state_path),
        }


def load(folder: Path) -> Bed | None:
    """The bed recorded in `folder`, or None when nothing was started there."""
    state = folder / "state.json"
    try:
        raw = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    return Bed(
        folder=folder,
        processes=tuple(Running.from_json(p) for p in raw["processes"]),
        kubeconfig=Path(raw["kubeconfig"]) if raw.get("kubeconfig") else None,
        kafka_bootstrap=raw.get("kafka_bootstrap"),
    )


def up(folder: Path, only: Only = None) -> Bed:
    """Build what is missing, start the parts, wait until each is ready, record them."""
    folder = folder.resolve()
    existing = load(folder)
    if existing is not None:
        if existing.healthy():
            _say(f"already running in {folder}")
            return existing
        down(folder)
    building.build_all(only)
    for part in ("etcd", "kafka", "pki", "logs", "apiserver-certs"):
        shutil.rmtree(folder / part, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    processes: list[Running] = []
    kubeconfig: Path | None = None
    bootstrap: str | None = None
    try:
        if only in (None, "kafka"):
            broker, bootstrap = start_kafka(folder)
            processes.append(broker)
            (folder / "kafka-bootstrap").write_text(bootstrap + "\n")
            _say(f"kafka {versions.KAFKA} ready on {bootstrap}")
        if only in (None, "kube"):
            kube_processes, kubeconfig = start_kube(folder, _say)
            processes.extend(kube_processes)
    except BaseException:
        for process in reversed(processes):
            stop(process)
        raise
    bed = Bed(folder, tuple(processes), kubeconfig, bootstrap)
    _write_state(bed)
    _say(f"up in {time.monotonic() - started_at:.1f} s")
    return bed


def down(folder: Path) -> list[str]:
    """Stop the recorded processes, newest first; returns the names that were running."""
    bed = load(folder.resolve())
    if bed is None:
        return []
    stopped = [process.name for process in reversed(bed.processes) if stop(process)]
    bed.state_path.unlink(missing_ok=True)
    return stopped


def _write_state(bed: Bed) -> None:
    state = {
        "versions": {
            "kubernetes": versions.KUBERNETES,
            "etcd": versions.ETCD,
            "kwok": versions.KWOK,
            "kafka": versions.KAFKA,
        },
        "kubeconfig": str(bed.kubeconfig) if bed.kubeconfig else None,
        "kafka_bootstrap": bed.kafka_bootstrap,
        "processes": [process.to_json() for process in bed.processes],
    }
    scratch = bed.state_path.with_suffix(".tmp")
    scratch.write_text(json.dumps(state, indent=2) + "\n")
    scratch.replace(bed.state_path)


def _say(message: str) -> None:
    print(f"testbed: {message}", file=sys.stderr, flush=True)
