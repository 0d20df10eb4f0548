"""Several syncer processes share the work; killing one mid-sync loses nothing.

The syncers run as real `python -m gitops syncer` processes. Tansu moves a SIGKILLed
member's partitions only after the session timeout (6 s here) plus a few seconds, so
this test takes about half a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from devcluster import DevCluster
from schemas.events import SyncSkipped, SyncSucceeded
from tests.syncer.conftest import K8s, configmap, deployment

MakeBench = Callable[..., Any]
APPS = [f"app{i}" for i in range(4)]


async def start_syncer(name: str, config_path: Path, log_path: Path) -> asyncio.subprocess.Process:
    log = log_path.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gitops",
            "syncer",
            "--config",
            str(config_path),
            "--id",
            name,
            stdout=log,
            stderr=log,
            env={**os.environ, "GITOPS_LOG_LEVEL": "INFO"},
        )
    finally:
        log.close()


async def wait_for_line(paths: list[Path], text: str, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in paths:
            if path.exists() and text in path.read_text(errors="replace"):
                return path
        await asyncio.sleep(0.05)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in paths if p.exists()}
    raise AssertionError(f"no {text!r} in syncer logs within {timeout}s: {logs}")


async def test_killed_syncer_work_is_finished_by_the_other_with_one_outcome_each(
    bench: MakeBench, cluster: DevCluster, k8s: K8s, tmp_path: Path
) -> None:
    apps = {
        name: {"repo": "platform", "path": f"apps/{name}", "cluster": "dev", "namespace": "default"}
        for name in APPS
    }
    b = await bench(apps=apps, syncer={"health_timeout": "20s"})
    files: dict[str, str | bytes | None] = {}
    for name in APPS:
        files[f"apps/{name}/cm.yaml"] = configmap(f"{name}-settings", v="1")
        files[f"apps/{name}/deploy.yaml"] = deployment(f"{name}-web")
    b.repo.commit_and_push(files)
    newest = b.repo.commit_and_push(
        {f"apps/{name}/cm.yaml": configmap(f"{name}-settings", v="2") for name in APPS}
    )
    cluster.settings.ready_delay = 4.0  # every sync waits ~4 s for health: time to kill one
    logs = [tmp_path / "s1.log", tmp_path / "s2.log"]
    procs = {}
    for name, log in zip(("s1", "s2"), logs, strict=True):
        # Separate caches, as separate pods would have.
        raw = json.loads(b.config.model_dump_json())
        raw["syncer"]["cache_dir"] = str(tmp_path / f"cache-{name}")
        config_path = tmp_path / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(raw))
        procs[name] = await start_syncer(name, config_path, log)
    try:
        for path in logs:
            await wait_for_line([path], "partitions assigned: ['t.sync-requests", 30)
        await asyncio.sleep(1.0)  # let the second join's rebalance settle
        sent = []
        for name in APPS:
            sent += await b.request(name, newest)
        victim_log = await wait_for_line(logs, "syncing app", 30)
        victim = victim_log.stem
        interrupted = re.findall(r"syncing app (app\d)", victim_log.read_text())
        procs[victim].send_signal(signal.SIGKILL)
        await procs[victim].wait()

        events = await b.outcomes(len(APPS), timeout=60)
        mine = {r.id for r in sent}
        deadline = time.monotonic() + 60
        while {e.data.request_id for e in events} & mine != mine and time.monotonic() < deadline:
            events = await b.outcomes(len(events) + 1, timeout=10)
        await asyncio.sleep(2.0)
        events = await b.outcomes(len(events), timeout=5)
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            await asyncio.wait_for(proc.wait(), 20)

    answers = defaultdict(list)
    for event in events:
        answers[event.data.request_id].append(event)
    assert all(len(answers[r.id]) == 1 for r in sent), answers
    appliers: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if isinstance(event, SyncSucceeded):
            appliers[event.data.app].add(event.source)
        else:
            assert isinstance(event, SyncSkipped), event  # superseded by a poll, never failed
    for name in APPS:
        assert len(appliers[name]) == 1, appliers
        cm = await k8s.get(f"/api/v1/namespaces/default/configmaps/{name}-settings")
        assert cm is not None and cm["data"] == {"v": "2"}
        inventory = await k8s.get(
            f"/api/v1/namespaces/gitops-system/configmaps/gitops-inventory-{name}"
        )
        assert inventory is not None and inventory["data"]["commit"] == newest
    survivor = "s2" if victim == "s1" else "s1"
    assert interrupted
    for name in interrupted:  # the killed member published nothing for what it was doing
        assert appliers[name] == {f"/gitops/syncer/{survivor}"}, appliers
