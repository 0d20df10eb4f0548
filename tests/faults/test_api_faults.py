"""A Kubernetes API server that answers 500, 429 or slowly for a while.

What a user observes: short bursts of errors and slow answers are retried within bounds
and the sync succeeds. When the errors outlast the retries the request fails (and is
dead-lettered), never reported as a success, and the cluster is left as the syncer
promises: an error met while validating (the server-side dry run of every object that
needs a write) leaves the cluster unchanged; an error met while writing leaves the
inventory at the previous commit with every written object recorded (so pruning stays
exact), and the next sync once the API recovers brings the cluster fully to the commit.

The API server is the test bed's kube-apiserver behind a proxy that injects the errors
and delays (`cluster.faults`); what the test reads back it reads from the server itself.
Slow answers stay below `syncer.api_timeout` (30 s by default); the timeout test lowers it
to 300 ms rather than wait past 30 s per request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import GitopsConfig, Topics
from schemas.events import SyncFailed, SyncSucceeded, parse_dead_letter
from syncer.service import Syncer
from tests.faults.conftest import (
    Outcome,
    app_configmaps,
    configmaps_yaml,
    create_namespace,
    create_topics,
    gitops_config,
    outcomes_for,
    publish_requests,
)
from tests.support.apiproxy import ApiProxy
from tests.support.bed import RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s
from tests.support.kafka import read_topic

pytestmark = pytest.mark.faults

NAMES = [f"cm-{i:02d}" for i in range(20)]


@pytest.fixture
async def ns(k8s: K8s, namespace: str) -> str:
    """The app's namespace, there before the first sync (as `default` is on any cluster)."""
    return await create_namespace(k8s, namespace)


def commit_files(ns: str, version: int) -> dict[str, str | bytes | None]:
    return {"apps/web/objects.yaml": configmaps_yaml(NAMES, ns, v=str(version))}


@pytest.fixture
async def config(
    kafka: RealKafka,
    cluster: ApiProxy,
    ns: str,
    inventory_namespace: str,
    tmp_path: Path,
    repo: WorkingCopy,
) -> GitopsConfig:
    made = gitops_config(
        bootstrap=kafka.bootstrap,
        prefix=kafka.topic_prefix,
        kubeconfig=cluster.write_kubeconfig(tmp_path / "kubeconfig"),
        repositories={"platform": repo.remote_url},
        apps={"web": {"repo": "platform", "path": "apps/web", "cluster": "dev", "namespace": ns}},
        cache_dir=tmp_path / "cache",
        group_id=unique_name("api-faults"),
        inventory_namespace=inventory_namespace,
        syncer={"api_attempts": 3},
    )
    await create_topics(made)
    return made


@pytest.fixture
def repo(working_copy: Callable[..., WorkingCopy]) -> WorkingCopy:
    return working_copy("platform")


async def sync(config: GitopsConfig, repo: WorkingCopy, commit: str) -> Outcome:
    """Publish one request for `commit` and return its one outcome."""
    (request,) = await publish_requests(config, [("web", repo.remote_url, commit)])
    events = await outcomes_for(config, {request.id}, timeout=60)
    (outcome,) = [e for e in events if e.data.request_id == request.id]
    return outcome


async def values(k8s: K8s, ns: str) -> dict[str, str]:
    return {name: data.get("v", "") for name, data in (await app_configmaps(k8s, ns)).items()}


@pytest.mark.parametrize("code", [500, 429])
async def test_api_errors_for_a_while_are_retried_and_the_sync_succeeds(
    config: GitopsConfig, repo: WorkingCopy, cluster: ApiProxy, k8s: K8s, ns: str, code: int
) -> None:
    commit = repo.commit_and_push(commit_files(ns, 1))
    cluster.faults.add("patch", "configmaps", count=6, code=code, namespace=ns)
    cluster.faults.add("get", "configmaps", count=2, code=code)
    async with Syncer(config, syncer_id="s1", retry_max_delay=0.2):
        outcome = await sync(config, repo, commit)
    assert isinstance(outcome, SyncSucceeded), outcome
    assert (outcome.data.duration_ms or 0) < 15_000
    assert cluster.faults.pending() == []
    assert await values(k8s, ns) == dict.fromkeys(NAMES, "1")
    assert (await k8s.inventory("web"))[0] == commit


async def test_slow_api_answers_delay_the_sync_but_it_succeeds(
    config: GitopsConfig, repo: WorkingCopy, cluster: ApiProxy, k8s: K8s, ns: str
) -> None:
    commit = repo.commit_and_push(commit_files(ns, 1))
    cluster.faults.add("patch", "configmaps", count=40, code=0, delay=1.0, namespace=ns)
    async with Syncer(config, syncer_id="s1", retry_max_delay=0.2):
        outcome = await sync(config, repo, commit)
    assert isinstance(outcome, SyncSucceeded), outcome
    assert (outcome.data.duration_ms or 0) >= 1000
    assert await values(k8s, ns) == dict.fromkeys(NAMES, "1")


async def test_api_timeouts_outlasting_the_retries_fail_dead_letter_and_change_nothing(
    config: GitopsConfig, repo: WorkingCopy, cluster: ApiProxy, k8s: K8s, ns: str
) -> None:
    """An API server that stops answering in `syncer.api_timeout` is a transient failure."""
    first = repo.commit_and_push(commit_files(ns, 1))
    second = repo.commit_and_push(commit_files(ns, 2))
    settings = config.syncer.model_copy(update={"api_timeout": timedelta(milliseconds=300)})
    impatient = config.model_copy(update={"syncer": settings})
    async with Syncer(impatient, syncer_id="s1", retry_max_delay=0.2):
        assert isinstance(await sync(impatient, repo, first), SyncSucceeded)
        cluster.faults.add("patch", "configmaps", count=10**6, code=0, delay=1.0, name="cm-07")
        outcome = await sync(impatient, repo, second)
    assert isinstance(outcome, SyncFailed), outcome
    assert "gave up after 3 attempts (syncer.api_attempts)" in (outcome.data.error or ""), (
        outcome.data.error
    )
    assert await values(k8s, ns) == dict.fromkeys(NAMES, "1")
    assert (await k8s.inventory("web"))[0] == first
    await _assert_dead_lettered(impatient, outcome)


async def test_a_sync_ends_within_its_time_budget_however_many_attempts_remain(
    config: GitopsConfig, repo: WorkingCopy, cluster: ApiProxy, k8s: K8s, ns: str
) -> None:
    """`syncer.sync_timeout` bounds a sync's retries, not only each request's count."""
    commit = repo.commit_and_push(commit_files(ns, 1))
    settings = config.syncer.model_copy(
        update={
            "api_timeout": timedelta(milliseconds=300),
            "api_attempts": 20,
            "sync_timeout": timedelta(seconds=3),
        }
    )
    bounded = config.model_copy(update={"syncer": settings})
    cluster.faults.add("patch", "configmaps", count=10**6, code=0, delay=1.0, namespace=ns)
    async with Syncer(bounded, syncer_id="s1", retry_max_delay=0.2):
        outcome = await sync(bounded, repo, commit)
    assert isinstance(outcome, SyncFailed), outcome
    assert "syncer.sync_timeout" in (outcome.data.error or ""), outcome.data.error
    assert (outcome.data.duration_ms or 0) < 3_000 + 2_000
    assert set(await values(k8s, ns)).isdisjoint(NAMES)


async def test_errors_outlasting_the_retries_during_validation_fail_and_change_nothing(
    config: GitopsConfig, repo: WorkingCopy, cluster: ApiProxy, k8s: K8s, ns: str
) -> None:
    first = repo.commit_and_push(commit_files(ns, 1))
    second = repo.commit_and_push(commit_files(ns, 2))
    async with Syncer(config, syncer_id="s1", retry_max_delay=0.2):
        assert isinstance(await sync(config, repo, first), SyncSucceeded)
        cluster.faults.add("patch", "configmaps", count=10**6, code=500, name="cm-07")
        outcome = await sync(config, repo, second)
    assert isinstance(outcome, SyncFailed), outcome
    assert "gave up after 3 attempts (syncer.api_attempts)" in (outcome.data.error or "")
    assert await values(k8s, ns) == dict.fromkeys(NAMES, "1")
    assert (await k8s.inventory("web"))[0] == first
    await _assert_dead_lettered(config, outcome)


async def test_errors_outlasting_the_retries_while_writing_fail_and_the_next_sync_completes(
    config: GitopsConfig, repo: WorkingCopy, cluster: ApiProxy, k8s: K8s, ns: str
) -> None:
    first = repo.commit_and_push(commit_files(ns, 1))
    second = repo.commit_and_push(commit_files(ns, 2))
    async with Syncer(config, syncer_id="s1", retry_max_delay=0.2):
        assert isinstance(await sync(config, repo, first), SyncSucceeded)
        # cm-07 passes its dry run, then every write of it fails.
        cluster.faults.add("patch", "configmaps", count=1, code=0, name="cm-07")
        cluster.faults.add("patch", "configmaps", count=10**6, code=500, name="cm-07")
        outcome = await sync(config, repo, second)
        assert isinstance(outcome, SyncFailed), outcome
        partial = await values(k8s, ns)
        applied, entries = await k8s.inventory("web")
        cluster.faults.clear()
        recovered = await sync(config, repo, second)
    assert partial["cm-07"] == "1", "the object whose writes failed changed anyway"
    assert applied == first, "a partly applied commit was recorded as applied"
    assert entries == {("ConfigMap", ns, n) for n in NAMES}
    await _assert_dead_lettered(config, outcome)
    assert isinstance(recovered, SyncSucceeded), recovered
    assert await values(k8s, ns) == dict.fromkeys(NAMES, "2")
    assert (await k8s.inventory("web"))[0] == second


async def _assert_dead_lettered(config: GitopsConfig, outcome: Outcome) -> None:
    records = await read_topic(
        config.kafka.bootstrap, Topics(config.kafka.topic_prefix).dead_letters, expect=1
    )
    (letter,) = [parse_dead_letter(r.value) for r in records]
    assert letter.id == outcome.data.request_id
    assert letter.dlqattempts == 3
