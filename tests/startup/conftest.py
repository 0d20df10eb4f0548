"""Run `gitops` commands as a user does, with a configuration of the test's own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bed import RealCluster, RealKafka

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """What a user sees: the exit code and both streams."""

    code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def gitops(*args: str, timeout: float = 90) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_KAFKA_BOOTSTRAP",)}
    done = subprocess.run(
        [sys.executable, "-m", "gitops", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def write_config(
    tmp_path: Path, kafka: RealKafka, real_cluster: RealCluster
) -> Callable[..., Path]:
    """A configuration on the bed; each argument replaces one part that should fail."""

    def write(
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        bootstrap: str | None = None,
        repo_url: str = "http://127.0.0.1:1/acme/platform.git",
    ) -> Path:
        kube = kubeconfig or str(real_cluster.write_kubeconfig(tmp_path / "kubeconfig"))
        ctx = f", context: {context}" if context else ""
        path = tmp_path / "gitops.yaml"
        path.write_text(
            f"""
kafka:
  bootstrap: "{bootstrap or kafka.bootstrap}"
  topic_prefix: {kafka.topic_prefix}
  partitions: 2
  startup_timeout: 2s
clusters: {{dev: {{kubeconfig: "{kube}"{ctx}}}}}
repositories: {{platform: {{url: "{repo_url}"}}}}
apps:
  web: {{repo: platform, path: apps/web, cluster: dev}}
notifications:
- {{name: hook, on: [failed], provider: webhook, url: "http://127.0.0.1:9/hook"}}
syncer: {{cache_dir: "{tmp_path / "cache"}", api_attempts: 2}}
"""
        )
        return path

    return write
