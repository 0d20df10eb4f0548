"""`gitops sync APP --wait` asks for a sync through Kafka and prints its outcome."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from syncer.service import Syncer
from tests.syncer.conftest import K8s, configmap, namespace_yaml

MakeBench = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[2]


async def test_sync_wait_applies_the_branch_head_and_prints_the_outcome(
    bench: MakeBench, k8s: K8s, tmp_path: Path
) -> None:
    b = await bench()
    sha = b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a", x="1")}
    )
    config_file = tmp_path / "gitops.yaml"
    config_file.write_text(yaml.safe_dump(b.config.model_dump(mode="json", exclude_none=True)))
    async with Syncer(b.config, syncer_id="s1"):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gitops",
            "sync",
            "web",
            "--wait",
            "--config",
            str(config_file),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("requested sync of web (branch head)")
    assert "web" in lines[1] and sha[:7] in lines[1] and "succeeded" in lines[1]
    assert "created 2" in lines[1]
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/a") is not None
