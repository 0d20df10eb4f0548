"""The real test bed for one test run: started once, shared by every xdist worker.

The first worker (or the controller, or `.ci/run` before pytest) that finds no healthy bed
in `$GITOPS_TESTBED_DIR` (default `.testbed/` in the checkout) starts it under a file
lock; the others wait on the lock and reuse it. A bed that pytest started is stopped when
the run ends, unless `GITOPS_TESTBED_KEEP=1`; one started by hand or by `.ci/run` is left
to whoever started it.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import new_client_from_config

from testbed.bed import Bed, down, load, up

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()


def bed_dir() -> Path:
    return Path(os.environ.get("GITOPS_TESTBED_DIR") or ROOT / ".testbed").resolve()


def ensure_bed() -> Bed:
    folder = bed_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / "bed.lock"), timeout=3600):
        bed = load(folder)
        if bed is not None and bed.healthy():
            return bed
        bed = up(folder)
        owner = os.environ.get("GITOPS_TESTBED_OWNER")
        if owner:
            (folder / "owner").write_text(owner)
        return bed


def stop_if_owned(owner: str) -> None:
    """End of a run: stop the bed if this run started it."""
    folder = bed_dir()
    marker = folder / "owner"
    if os.environ.get("GITOPS_TESTBED_KEEP") == "1":
        return
    try:
        if marker.read_text().strip() != owner:
            return
    except OSError:
        return
    down(folder)
    marker.unlink(missing_ok=True)


def unique_name(prefix: str) -> str:
    """A DNS-1123 name unique to this test in this run (workers have their own pids)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    return f"{prefix}-{worker}-{os.getpid() % 100000}-{next(_ids)}"[:63].rstrip("-")


@dataclass(frozen=True)
class RealCluster:
    """The bed's kube-apiserver, reached as its admin (group `system:masters`)."""

    kubeconfig: Path

    @property
    def url(self) -> str:
        config = yaml.safe_load(self.kubeconfig.read_text())
        server: str = config["clusters"][0]["cluster"]["server"]
        return server

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(self.kubeconfig.read_text())
        path.chmod(0o600)
        return path

    async def client(self) -> ApiClient:
        client: ApiClient = await new_client_from_config(config_file=str(self.kubeconfig))
        return client


@dataclass(frozen=True)
class RealKafka:
    """The bed's Apache Kafka, with a topic prefix of this test's own."""

    bootstrap: str
    topic_prefix: str
