"""Several syncer processes share the work; killing one mid-sync loses nothing.

The syncers run as real `python -m gitops syncer` processes against the bed's Kafka, and
reach the cluster through this test's proxy (it lives in the test process). Kafka moves
a SIGKILLed member's partitions only after the session timeout (6 s here), so this test
takes about twenty seconds.
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

from schemas.events import SyncSkipped, SyncSucceeded
from tests.support.apiproxy import ApiProxy
from tests.support.k8s import create_namespace
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


def assigned(path: Path, topic: str) -> set[int]:
    """The partitions of `topic` the syncer logging to `path` holds after its last rebalance."""
    found = re.findall(r"partitions assigned: \[([^\]]*)\]", path.read_text(errors="replace"))
    if not found:
        return set()
    return {int(p) for p in re.findall(rf"'{re.escape(topic)}:(\d+)'", found[-1])}


async def wait_for_assignment(
    paths: list[Path], topic: str, partitions: int, timeout: float
) -> None:
    """Until every syncer holds some of `topic`'s partitions and together they hold all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [assigned(path, topic) for path in paths if path.exists()]
        if (
            len(held) == len(paths)
            and all(held)
            and sum(len(h) for h in held) == partitions
            and set().union(*held) == set(range(partitions))
        ):
            return
        await asyncio.sleep(0.05)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in paths if p.exists()}
    raise AssertionError(f"{topic} not shared out within {timeout}s: {logs}")


def finished(events: list[Any], requests: set[str], commit: str) -> bool:
    """Every request answered, and every app applied at `commit` (by it or a later poll)."""
    applied = {
        e.data.app for e in events if isinstance(e, SyncSucceeded) and e.data.commit == commit
    }
    answered = {e.data.request_id for e in events}
    return requests <= answered and applied == set(APPS)


async def test_killed_syncer_work_is_finished_by_the_other_with_one_outcome_each(
    bench: MakeBench, cluster: ApiProxy, k8s: K8s, tmp_path: Path, namespace: str
) -> None:
    apps = {
        name: {"repo": "platform", "path": f"apps/{name}", "cluster": "dev", "namespace": namespace}
        for name in APPS
    }
    b = await bench(apps=apps, syncer={"health_timeout": "20s"})
    await create_namespace(k8s, b.ns)
    files: dict[str, str | bytes | None] = {}
    for name in APPS:
        files[f"apps/{name}/cm.yaml"] = configmap(f"{name}-settings", v="1")
        files[f"apps/{name}/deploy.yaml"] = deployment(f"{name}-web")
    b.repo.commit_and_push(files)
    newest = b.repo.commit_and_push(
        {f"apps/{name}/cm.yaml": configmap(f"{name}-settings", v="2") for name in APPS}
    )
    # Every write to the apps' namespace (dry run, then apply) takes 2 s: time to kill one.
    cluster.faults.add("patch", "*", count=1000, code=0, delay=2.0, namespace=b.ns)
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
        await wait_for_assignment(logs, b.topics.sync_requests, partitions=4, timeout=30)
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
        while not finished(events, mine, newest) and time.monotonic() < deadline:
            events = await b.outcomes(len(events) + 1, timeout=10)
        await asyncio.sleep(2.0)  # time for a duplicate outcome to show up, if there were one
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
    wrong = {
        r.id: [(type(e).__name__, e.source, e.data.error) for e in answers[r.id]]
        for r in sent
        if len(answers[r.id]) != 1
    }
    assert not wrong, (wrong, [(type(e).__name__, e.data.app, e.source) for e in events])
    appliers: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if isinstance(event, SyncSucceeded):
            appliers[event.data.app].add(event.source)
        else:
            assert isinstance(event, SyncSkipped), event  # superseded by a poll, never failed
    for name in APPS:
        assert len(appliers[name]) == 1, appliers
        cm = await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/{name}-settings")
        assert cm is not None and cm["data"] == {"v": "2"}
        commit, _ = await k8s.inventory(name)
        assert commit == newest
    survivor = "s2" if victim == "s1" else "s1"
    assert interrupted
    for name in interrupted:  # the killed member published nothing for what it was doing
        assert appliers[name] == {f"/gitops/syncer/{survivor}"}, appliers
