"""`gitops diff APP`: the real command, run as a user runs it, against the real cluster."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas import GitopsConfig
from syncer.service import Syncer
from tests.drift.conftest import edit, eventually, synced
from tests.syncer.conftest import K8s, configmap, deployment, namespace_yaml

MakeBench = Callable[..., Any]


async def gitops(config: GitopsConfig, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "gitops.json"  # JSON is YAML: the config loader reads it as is
    path.write_text(json.dumps(config.model_dump(mode="json", exclude_none=True)))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        *args,
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_diff_names_the_drifted_object_and_field_and_exits_1(
    bench: MakeBench, k8s: K8s, tmp_path: Path, namespace: str
) -> None:
    apps = {
        "web": {
            "repo": "platform",
            "path": "apps/web",
            "cluster": "dev",
            "namespace": namespace,
            "self_heal": False,
        }
    }
    b = await bench(apps=apps)
    files = {
        "apps/web/ns.yaml": namespace_yaml(b.ns),
        "apps/web/api.yaml": deployment("api", replicas=2),
        "apps/web/cm.yaml": configmap("settings", color="blue"),
    }
    await asyncio.to_thread(b.repo.commit_and_push, files)
    async with Syncer(b.config, syncer_id="s1", periodic_checks=True):
        await eventually(lambda: synced(b.bootstrap, b.topics.sync_events), timeout=30)

    code, out, err = await gitops(b.config, tmp_path, "diff", "web")
    assert (code, err) == (0, ""), out
    assert "no drift: 3 objects match Git" in out

    await edit(k8s, f"/apis/apps/v1/namespaces/{b.ns}/deployments/api", {"spec": {"replicas": 7}})
    code, out, err = await gitops(b.config, tmp_path, "diff", "web")
    assert code == 1, err
    assert f"Deployment {b.ns}/api: changed spec.replicas" in out
    assert "-  replicas: 7\n+  replicas: 2\n" in out
    assert "1 of 3 objects differ from Git" in out


async def test_diff_of_an_unknown_app_is_a_usage_error(bench: MakeBench, tmp_path: Path) -> None:
    b = await bench()
    code, _, err = await gitops(b.config, tmp_path, "diff", "nope")
    assert code == 2
    assert "unknown app 'nope' (known: web)" in err
