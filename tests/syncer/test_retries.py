"""Transient API failures are retried; when they persist the request is dead-lettered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.events import SyncFailed, SyncSucceeded, parse_dead_letter
from syncer.service import Syncer
from tests.support.apiproxy import ApiProxy
from tests.syncer.conftest import K8s, configmap, namespace_yaml

MakeBench = Callable[..., Any]


async def test_brief_api_outage_is_retried_and_the_sync_succeeds(
    bench: MakeBench, cluster: ApiProxy, k8s: K8s
) -> None:
    b = await bench()
    b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a")}
    )
    cluster.faults.add("patch", "configmaps", count=2, code=503, namespace=b.ns)
    async with Syncer(b.config, syncer_id="s1", retry_max_delay=0.2):
        await b.request("web")
        (event,) = await b.outcomes(1)
    assert isinstance(event, SyncSucceeded), event
    assert not cluster.faults.pending()  # both injected 503s were met, and retried past
    cm = await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/a")
    assert cm is not None and cm["data"] == {"k": "v"}


async def test_persistent_api_errors_send_the_request_to_the_dead_letter_topic(
    bench: MakeBench, cluster: ApiProxy, k8s: K8s
) -> None:
    b = await bench(syncer={"api_attempts": 2})
    b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a")}
    )
    cluster.faults.add("patch", "configmaps", count=1000, code=503, namespace=b.ns)
    async with Syncer(b.config, syncer_id="s1", retry_max_delay=0.2):
        (request,) = await b.request("web")
        (event,) = await b.outcomes(1)
        (raw,) = await b.dead_letters(1)

    assert isinstance(event, SyncFailed), event
    assert "503" in (event.data.error or "")
    assert "gave up after 2 attempts (syncer.api_attempts)" in (event.data.error or "")
    letter = parse_dead_letter(raw)
    assert letter.id == request.id
    assert letter.dlqattempts == 2
    assert "503" in letter.dlqerror
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/a") is None
