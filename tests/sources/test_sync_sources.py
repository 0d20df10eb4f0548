"""End to end through the real syncer: rendered apps land in the cluster as rendered.

The bed's Apache Kafka and kube-apiserver, a real git server: a kustomize overlay and a
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
from tests.support.apiproxy import ApiProxy
from tests.support.k8s import create_namespace
from tests.syncer.conftest import K8s, namespace_yaml

MakeBench = Callable[..., Any]
BASE_WITH_NAMESPACE = "resources: [deployment.yaml, service.yaml, ns.yaml]\n"


def overlay(namespace: str) -> dict[str, str]:
    """The Kustomize example of `test_kustomize`, its overlay retargeted at `namespace`."""
    key = "apps/web/overlays/prod/kustomization.yaml"
    kustomization = BASE[key].replace("namespace: web-prod\n", f"namespace: {namespace}\n")
    assert kustomization != BASE[key]
    return {**BASE, key: kustomization}


def app(path: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"repo": "platform", "cluster": "dev", "path": path, "namespace": namespace, **extra}


def live(obj: dict[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    return obj


async def test_kustomize_overlay_objects_in_the_cluster_match_kubectl_kustomize(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    b = await bench(apps={"web": app("apps/web/overlays/prod", namespace)})
    files = overlay(b.ns)
    files["apps/web/overlays/prod/kustomization.yaml"] = files[
        "apps/web/overlays/prod/kustomization.yaml"
    ].replace("  - ../../base\n", "  - ../../base\n  - ns.yaml\n")
    files["apps/web/overlays/prod/ns.yaml"] = namespace_yaml(b.ns)
    b.repo.commit_and_push(files)
    expected = kubectl_kustomize(b.repo.path / "apps/web/overlays/prod")

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncSucceeded), event
    assert {f"{o.kind}/{o.name}" for o in event.data.objects} == {
        f"{o['kind']}/{o['metadata']['name']}" for o in expected
    }
    config = next(o for o in expected if o["kind"] == "ConfigMap")
    cm = live(await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/{config['metadata']['name']}"))
    assert cm["data"] == config["data"]
    assert cm["metadata"]["labels"] == config["metadata"]["labels"]
    deploy = live(await k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/prod-web"))
    wanted = next(o for o in expected if o["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == wanted["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"] == wanted["metadata"]["labels"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == wanted["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_helm_chart_objects_in_the_cluster_match_the_helm_sdk(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    b = await bench(
        apps={"shop": app("charts/web", namespace, helm={"value_files": ["envs/prod.yaml"]})}
    )
    b.repo.commit_and_push({**CHART, "charts/web/templates/ns.yaml": namespace_yaml(b.ns)})
    values = {"replicas": 3, "config": {"LOG_LEVEL": "info"}}
    expected = helm_directly(b.repo.path / "charts/web", values, "shop", b.ns)

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("shop")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncSucceeded), event
    assert sorted(f"{o.kind}/{o.name}" for o in event.data.objects) == [
        "ConfigMap/shop-config",
        "Deployment/shop",
        f"Namespace/{b.ns}",
    ]
    cm = live(await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/shop-config"))
    assert cm["data"] == next(o for o in expected if o["kind"] == "ConfigMap")["data"]
    deploy = live(await k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/shop"))
    assert deploy["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop"


async def test_a_chart_rendering_a_wrong_type_fails_at_once_naming_the_object_and_field(
    bench: MakeBench, k8s: K8s, cluster: ApiProxy, namespace: str
) -> None:
    # The classic Helm slip: an unquoted value renders `true`, and an env value is a string.
    env = """\
          env:
            {{- range $k, $v := .Values.env }}
            - {name: {{ $k }}, value: {{ $v }}}
            {{- end }}
"""
    chart = {**CHART}
    chart["charts/web/templates/deployment.yaml"] += env
    values = {"env": {"DEBUG": True}}
    b = await bench(apps={"shop": app("charts/web", namespace, helm={"values": values})})
    await create_namespace(k8s, b.ns)
    mark = len(cluster.seen)
    sha = b.repo.commit_and_push(chart)
    rendered = helm_directly(b.repo.path / "charts/web", values, "shop", b.ns)
    deploy = next(o for o in rendered if o["kind"] == "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "DEBUG", "value": True}], "Helm renders a boolean"

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("shop")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncFailed), event
    assert event.data.commit == sha
    assert [(o.kind, o.name, o.action) for o in event.data.objects] == [
        ("Deployment", "shop", "failed")
    ]
    assert event.data.error is not None
    assert f"Deployment {b.ns}/shop" in event.data.error
    assert '.env[name="DEBUG"].value: expected string' in event.data.error
    # Refused for what it is, not retried as a server error: one dry run, no write.
    seen = cluster.seen[mark:]
    dry_runs = [s for s in seen if s.resource == "deployments" and s.dry_run]
    assert len(dry_runs) == 1, dry_runs
    assert [s for s in seen if s.write and s.status < 400] == []


async def test_broken_overlay_fails_the_sync_and_writes_nothing(
    bench: MakeBench, k8s: K8s, cluster: ApiProxy, namespace: str
) -> None:
    b = await bench(apps={"web": app("apps/web/overlays/prod", namespace)})
    broken = BASE["apps/web/overlays/prod/replicas.yaml"].replace("name: web", "name: nope")
    files = overlay(b.ns)
    files["apps/web/overlays/prod/replicas.yaml"] = broken
    files["apps/web/base/ns.yaml"] = namespace_yaml(b.ns)
    sha = b.repo.commit_and_push(files)

    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncFailed), event
    assert event.data.commit == sha
    assert event.data.error is not None
    assert event.data.error.startswith("kustomize build apps/web/overlays/prod failed:")
    assert "nope" in event.data.error, "kustomize's own words name the unmatched patch"
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}") is None
    assert await k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/prod-web") is None
    assert cluster.writes() == []


async def test_with_verification_only_the_commit_signed_by_an_allowed_key_is_applied(
    bench: MakeBench, k8s: K8s, tmp_path: Path
) -> None:
    b = await bench()
    key, public = ssh_key(tmp_path / "keys", "alice")
    raw = b.config.model_dump()
    raw["repositories"]["platform"]["verify"] = {"ssh_allowed_signers": [public]}
    config = b.config = GitopsConfig.model_validate(raw)
    unsigned = b.repo.commit_and_push({"apps/web/ns.yaml": namespace_yaml(b.ns), **FILES})
    second = FILES["apps/web/cm.yaml"].replace("name: c}", "name: c2}")

    async with Syncer(config, syncer_id="s1"):
        await b.request("web", unsigned)
        (rejected,) = await b.outcomes(1)
        assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/c") is None
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
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/c") is not None
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/c2") is not None


async def test_a_push_that_changes_only_the_base_resyncs_the_overlay(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    b = await bench(apps={"web": app("apps/web/overlays/prod", namespace)})
    files = overlay(b.ns)
    files["apps/web/base/kustomization.yaml"] = BASE_WITH_NAMESPACE
    files["apps/web/base/ns.yaml"] = namespace_yaml(b.ns)
    first = b.repo.commit_and_push(files)
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
    live_service = live(await k8s.get(f"/api/v1/namespaces/{b.ns}/services/prod-web"))
    assert [p["port"] for p in live_service["spec"]["ports"]] == [80, 8080]
