"""End to end through the real syncer: rendered apps land in the emulator as rendered.

Real broker, real git server, the Kubernetes API emulator: a kustomize overlay and a
Helm chart pushed with the git CLI end up in the cluster exactly as `kubectl kustomize`
and the Helm SDK render them; a broken overlay fails the sync and writes nothing; with
commit verification on, only a commit signed by an allowed key is applied.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas import GitopsConfig
from schemas.events import SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.sources.conftest import kubectl_kustomize
from tests.sources.test_helm import CHART, helm_directly
from tests.sources.test_kustomize import BASE
from tests.sources.test_verification import FILES, ssh_key, ssh_signed_commit
from tests.syncer.conftest import K8s

MakeBench = Callable[..., Any]
BASE_WITH_NAMESPACE = "resources: [deployment.yaml, service.yaml, ns.yaml]\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n"


def app(path: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"repo": "platform", "cluster": "dev", "path": path, "namespace": namespace, **extra}


def live(obj: dict[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    return obj


async def test_kustomize_overlay_objects_in_the_cluster_match_kubectl_kustomize(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench(apps={"web": app("apps/web/overlays/prod", "web-prod")})
    kustomization = BASE["apps/web/overlays/prod/kustomization.yaml"].replace(
        "  - ../../base\n", "  - ../../base\n  - ns.yaml\n"
    )
    b.repo.commit_and_push(
        {
            **BASE,
            "apps/web/overlays/prod/kustomization.yaml": kustomization,
            "apps/web/overlays/prod/ns.yaml": NAMESPACE.format("web-prod"),
        }
    )
    expected = kubectl_kustomize(b.repo.path / "apps/web/overlays/prod")

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncSucceeded), event
    assert {f"{o.kind}/{o.name}" for o in event.data.objects} == {
        f"{o['kind']}/{o['metadata']['name']}" for o in expected
    }
    config = next(o for o in expected if o["kind"] == "ConfigMap")
    cm = live(await k8s.get(f"/api/v1/namespaces/web-prod/configmaps/{config['metadata']['name']}"))
    assert cm["data"] == config["data"]
    assert cm["metadata"]["labels"] == config["metadata"]["labels"]
    deploy = live(await k8s.get("/apis/apps/v1/namespaces/web-prod/deployments/prod-web"))
    wanted = next(o for o in expected if o["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == wanted["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"] == wanted["metadata"]["labels"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == wanted["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_helm_chart_objects_in_the_cluster_match_the_helm_sdk(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench(
        apps={"shop": app("charts/web", "shop", helm={"value_files": ["envs/prod.yaml"]})}
    )
    b.repo.commit_and_push({**CHART, "charts/web/templates/ns.yaml": NAMESPACE.format("shop")})
    values = {"replicas": 3, "config": {"LOG_LEVEL": "info"}}
    expected = helm_directly(b.repo.path / "charts/web", values, "shop", "shop")

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("shop")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncSucceeded), event
    assert sorted(f"{o.kind}/{o.name}" for o in event.data.objects) == [
        "ConfigMap/shop-config",
        "Deployment/shop",
        "Namespace/shop",
    ]
    cm = live(await k8s.get("/api/v1/namespaces/shop/configmaps/shop-config"))
    assert cm["data"] == next(o for o in expected if o["kind"] == "ConfigMap")["data"]
    deploy = live(await k8s.get("/apis/apps/v1/namespaces/shop/deployments/shop"))
    assert deploy["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop"


async def test_broken_overlay_fails_the_sync_and_writes_nothing(bench: MakeBench, k8s: K8s) -> None:
    b = await bench(apps={"web": app("apps/web/overlays/prod", "web-prod")})
    broken = BASE["apps/web/overlays/prod/replicas.yaml"].replace("name: web", "name: nope")
    sha = b.repo.commit_and_push(
        {
            **BASE,
            "apps/web/overlays/prod/replicas.yaml": broken,
            "apps/web/base/ns.yaml": NAMESPACE.format("web-prod"),
        }
    )

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncFailed), event
    assert event.data.commit == sha
    assert event.data.error is not None
    assert event.data.error.startswith("kustomize build apps/web/overlays/prod failed:")
    assert "nope" in event.data.error, "kustomize's own words name the unmatched patch"
    assert await k8s.get("/api/v1/namespaces/web-prod") is None
    assert await k8s.get("/apis/apps/v1/namespaces/web-prod/deployments/prod-web") is None


async def test_with_verification_only_the_commit_signed_by_an_allowed_key_is_applied(
    bench: MakeBench, k8s: K8s, tmp_path: Path
) -> None:
    b = await bench()
    key, public = ssh_key(tmp_path / "keys", "alice")
    raw = b.config.model_dump()
    raw["repositories"]["platform"]["verify"] = {"ssh_allowed_signers": [public]}
    config = b.config = GitopsConfig.model_validate(raw)
    unsigned = b.repo.commit_and_push({"apps/web/ns.yaml": NAMESPACE.format("web"), **FILES})
    second = FILES["apps/web/cm.yaml"].replace("name: c}", "name: c2}")

    async with Syncer(config, syncer_id="s1"):
        await b.request("web", unsigned)
        (rejected,) = await b.outcomes(1)
        assert await k8s.get("/api/v1/namespaces/web/configmaps/c") is None
        signed = ssh_signed_commit(b.repo, key, {"apps/web/cm2.yaml": second})
        await b.request("web", signed)
        _, accepted = await b.outcomes(2)

    assert isinstance(rejected, SyncFailed), rejected
    assert rejected.data.error == (
        f"commit {unsigned[:7]} is not signed "
        "(repository platform requires commits signed by an allowed key)"
    )
    assert isinstance(accepted, SyncSucceeded), accepted
    assert accepted.data.commit == signed
    assert await k8s.get("/api/v1/namespaces/web/configmaps/c") is not None
    assert await k8s.get("/api/v1/namespaces/web/configmaps/c2") is not None


async def test_a_push_that_changes_only_the_base_resyncs_the_overlay(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench(apps={"web": app("apps/web/overlays/prod", "web-prod")})
    first = b.repo.commit_and_push(
        {
            **BASE,
            "apps/web/base/kustomization.yaml": BASE_WITH_NAMESPACE,
            "apps/web/base/ns.yaml": NAMESPACE.format("web-prod"),
        }
    )
    two_ports = "    - {port: 80, name: http}\n    - {port: 8080, name: alt}\n"
    service = BASE["apps/web/base/service.yaml"].replace("    - port: 80\n", two_ports)

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web", first)
        await b.outcomes(1)
        second = b.repo.commit_and_push({"apps/web/base/service.yaml": service})
        await b.request("web", second, before=first)
        _, event = await b.outcomes(2)

    assert isinstance(event, SyncSucceeded), event
    assert event.data.commit == second
    assert {f"{o.kind}/{o.name}": o.action for o in event.data.objects}["Service/prod-web"] == (
        "configured"
    )
    live_service = live(await k8s.get("/api/v1/namespaces/web-prod/services/prod-web"))
    assert [p["port"] for p in live_service["spec"]["ports"]] == [80, 8080]
