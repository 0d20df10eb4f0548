"""A syncer whose consumer group session timeout the broker refuses says so and stops.

Apache Kafka bounds `syncer.session_timeout` by its `group.min.session.timeout.ms` (6 s
unless its operator changed it); Tansu, the broker of `gitops up`, accepts any, so a
configuration tried there meets the refusal only on a real broker. What the user observes:
`gitops syncer` exits 2 with one line naming the file, `syncer.session_timeout` and the
broker, instead of ending in the client library's traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import gitops_config, write_config
from tests.support.bed import RealCluster, RealKafka, unique_name
from tests.support.git import WorkingCopy

pytestmark = pytest.mark.faults


async def test_a_session_timeout_below_the_brokers_minimum_stops_the_syncer_with_one_line(
    kafka: RealKafka,
    real_cluster: RealCluster,
    inventory_namespace: str,
    working_copy: Callable[..., WorkingCopy],
    tmp_path: Path,
) -> None:
    repo = working_copy("platform")
    config = gitops_config(
        bootstrap=kafka.bootstrap,
        prefix=kafka.topic_prefix,
        kubeconfig=real_cluster.write_kubeconfig(tmp_path / "kubeconfig"),
        repositories={"platform": repo.remote_url},
        apps={"web": {"repo": "platform", "path": "apps/web", "cluster": "dev"}},
        cache_dir=tmp_path / "cache",
        group_id=unique_name("refused"),
        inventory_namespace=inventory_namespace,
        session_timeout="2s",
        heartbeat_interval="500ms",
    )
    path = write_config(config, tmp_path / "gitops.yaml")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        "syncer",
        "--config",
        str(path),
        "--id",
        "s1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = (out + err).decode(errors="replace")
    assert process.returncode == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "Unclosed" not in text, text[-3000:]
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith(f"gitops: {path}: syncer.session_timeout: "), last
    assert f"the broker at {kafka.bootstrap} refused 2s" in last, last
    assert "group.min.session.timeout.ms" in last, last
