"""A syncer SIGKILLed at a random moment of a 200-object apply, twenty times over.

What a user relies on: however often a syncer dies mid-apply, the next one finishes the
job — the cluster ends at the newest commit, the inventory lists exactly what Git has,
and no object that Git still has was ever pruned on the way.

Each round pushes a commit that changes all 200 ConfigMaps and swaps 5 of them for new
ones (so pruning has work), starts a real `python -m gitops syncer` process, waits until
it logs that it is applying, kills it after a random 0-1 s (every other round counted
from the first write of the commit), and checks the invariant. The cluster is the test
bed's kube-apiserver behind the test's API proxy, which delays each write to the app's
namespace (40 ms) so an apply takes about a second; the test reads the cluster straight
from the server. Every round has a fresh consumer group and topic prefix on the bed's
Kafka: a SIGKILLed member keeps its partitions until its session times out, and the new
syncer must see only its own round's request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.events import SyncSucceeded
from tests.faults.conftest import (
    app_configmaps,
    configmaps_yaml,
    create_topics,
    gitops_config,
    namespace_yaml,
    outcomes_for,
    publish_requests,
    start_syncer,
    write_config,
)
from tests.security.figures import record
from tests.support.apiproxy import ApiProxy
from tests.support.bed import RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s

pytestmark = pytest.mark.faults

ROUNDS = 20
OBJECTS = 200


def names_of(round_: int) -> list[str]:
    return [f"cm-{k:04d}" for k in range(5 * round_, 5 * round_ + OBJECTS)]


def files_of(ns: str, round_: int) -> dict[str, str | bytes | None]:
    return {
        "apps/web/namespace.yaml": namespace_yaml(ns),
        "apps/web/objects.yaml": configmaps_yaml(names_of(round_), ns, rev=str(round_)),
    }


async def test_syncer_killed_mid_apply_twenty_times_leaves_the_newest_commit_and_exact_inventory(
    kafka: RealKafka,
    cluster: ApiProxy,
    k8s: K8s,
    namespace: str,
    inventory_namespace: str,
    working_copy: Callable[..., WorkingCopy],
    tmp_path: Path,
) -> None:
    rng = random.Random(20240611)
    repo = working_copy("platform")
    ns = namespace
    app = {"web": {"repo": "platform", "path": "apps/web", "cluster": "dev", "namespace": ns}}
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    cluster.faults.add("patch", "configmaps", count=10**9, code=0, delay=0.04, namespace=ns)
    kills: list[float] = []
    landed = [0, 0, 0]  # kills before any write, mid-write, after every write
    for round_ in range(ROUNDS + 1):
        commit = repo.commit_and_push(files_of(ns, round_), f"round {round_}")
        config = gitops_config(
            bootstrap=kafka.bootstrap,
            prefix=f"{kafka.topic_prefix}-r{round_}",
            kubeconfig=kubeconfig,
            repositories={"platform": repo.remote_url},
            apps=app,
            cache_dir=tmp_path / f"cache{round_}",
            group_id=unique_name("kills"),
            inventory_namespace=inventory_namespace,
            partitions=1,
        )
        await create_topics(config)
        path = write_config(config, tmp_path / f"round{round_}.yaml")
        before = set(await app_configmaps(k8s, ns))
        syncer = await start_syncer(f"s{round_}", path, config.syncer.group_id, tmp_path)
        try:
            (request,) = await publish_requests(config, [("web", repo.remote_url, commit)])
            if round_ == ROUNDS:  # the last syncer is left to finish
                events = await outcomes_for(config, {request.id}, timeout=60)
                finished = [e for e in events if e.data.request_id == request.id]
                assert isinstance(finished[0], SyncSucceeded), finished
                break
            await syncer.wait_for(f"syncing app web to {commit[:12]}", timeout=30)
            # Half the kills land anywhere in the apply (validation included), half
            # once the first object of the commit is written.
            if round_ % 2:
                await _first_write(k8s, ns, round_)
            pause = rng.uniform(0.0, 1.0)
            kills.append(pause)
            await asyncio.sleep(pause)
            await syncer.kill()
        finally:
            await syncer.stop()
        live_now = await app_configmaps(k8s, ns)
        after = set(live_now)
        written = sum(data == {"rev": str(round_)} for data in live_now.values())
        landed[0 if written == 0 else 1 if written < OBJECTS else 2] += 1
        still_in_git = before & set(names_of(round_))
        assert still_in_git <= after, (
            f"round {round_}: pruned objects Git still has: {sorted(still_in_git - after)}"
        )

    live = await app_configmaps(k8s, ns)
    newest = names_of(ROUNDS)
    assert sorted(live) == newest
    assert all(data == {"rev": str(ROUNDS)} for data in live.values())
    applied, entries = await k8s.inventory("web")
    assert applied == commit
    assert entries == {("Namespace", "", ns)} | {("ConfigMap", ns, n) for n in newest}
    assert landed[1] >= 3, f"too few kills landed mid-write: {landed}"
    record(
        f"syncer SIGKILLed mid-apply of a 200-object commit, {ROUNDS} times",
        "the cluster ends at the newest commit, inventory exact, nothing in Git pruned",
        tried=ROUNDS,
        accepted=ROUNDS,
        notes=f"{landed[0]} kills before the first write, {landed[1]} mid-write, "
        f"{landed[2]} after the last write",
    )
    print(
        f"\n{ROUNDS} kills: {landed[0]} before the first write, {landed[1]} mid-write, "
        f"{landed[2]} after the last write; "
        f"kill points {', '.join(f'{k:.2f}' for k in kills)} s"
    )


async def _first_write(k8s: K8s, ns: str, round_: int, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(d == {"rev": str(round_)} for d in (await k8s.configmaps(ns)).values()):
        assert loop.time() < deadline, f"round {round_}: nothing written in {timeout}s"
        await asyncio.sleep(0.02)
