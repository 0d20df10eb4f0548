"""Kustomize apps: an overlay in Git renders exactly as `kubectl kustomize` renders it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.config import AppConfig
from syncer.gitcache import GitCache
from syncer.sources import Renderer, RenderError, SourceRefused, render_app
from tests.sources.conftest import by_identity, fetch, kubectl_kustomize, objects
from tests.support.git import WorkingCopy

BASE = {
    "apps/web/base/kustomization.yaml": """\
resources:
  - deployment.yaml
  - service.yaml
""",
    "apps/web/base/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.25
""",
    "apps/web/base/service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
""",
    "apps/web/overlays/prod/kustomization.yaml": """\
namespace: web-prod
namePrefix: prod-
commonLabels:
  env: prod
resources:
  - ../../base
patches:
  - path: replicas.yaml
configMapGenerator:
  - name: web-config
    literals:
      - LOG_LEVEL=info
      - FEATURE_X=on
images:
  - name: nginx
    newTag: "1.27"
""",
    "apps/web/overlays/prod/replicas.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
""",
}


def overlay_app(**extra: object) -> AppConfig:
    return AppConfig.model_validate(
        {"repo": "platform", "cluster": "dev", "path": "apps/web/overlays/prod", **extra}
    )


async def test_overlay_renders_what_kubectl_kustomize_renders(
    working_copy: Callable[..., WorkingCopy], cache: GitCache, tmp_path: Path
) -> None:
    repo = working_copy()
    repo.commit_and_push(BASE)
    app = overlay_app()
    commit, files, tree = await fetch(cache, repo, app)

    async def read_tree() -> dict[str, bytes]:
        return tree

    rendered = await render_app(
        app, files, commit=commit, app_name="web", workdir=tmp_path / "w", read_tree=read_tree
    )

    assert list(rendered) == ["kustomize://apps/web/overlays/prod/build.yaml"]
    expected = kubectl_kustomize(repo.path / app.path)
    got = objects(rendered)
    assert by_identity(got) == by_identity(expected)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in got}
    assert ("Deployment", "prod-web") in kinds
    assert any(kind == "ConfigMap" and name.startswith("prod-web-config-") for kind, name in kinds)
    deployment = next(o for o in got if o["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "web-prod"
    assert deployment["spec"]["replicas"] == 3


async def test_kustomization_is_detected_without_a_source_setting(tmp_path: Path) -> None:
    files = {
        "app/kustomization.yaml": b"resources: [cm.yaml]\n",
        "app/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    }
    app = AppConfig(repo="r", cluster="c", path="app")

    rendered = await render_app(app, files, commit="c1", app_name="a", workdir=tmp_path)

    assert [o["metadata"]["name"] for o in objects(rendered)] == ["c"]


async def test_broken_overlay_fails_with_kustomizes_own_message(tmp_path: Path) -> None:
    files = {
        "app/kustomization.yaml": b"resources: [missing.yaml]\n",
    }
    app = AppConfig(repo="r", cluster="c", path="app", source="kustomize")

    with pytest.raises(RenderError) as failure:
        await render_app(app, files, commit="c1", app_name="a", workdir=tmp_path)

    message = str(failure.value)
    assert message.startswith("kustomize build app failed:")
    assert "missing.yaml" in message
    assert str(tmp_path) not in message, "snapshot paths are shown repo-relative"


@pytest.mark.parametrize(
    "entry",
    [
        "https://github.com/acme/bases//web?ref=v1",
        "github.com/acme/bases/web?ref=main",
        "git::https://example.com/acme/bases.git//web",
    ],
)
async def test_remote_base_is_refused_naming_the_file_and_entry(entry: str, tmp_path: Path) -> None:
    files = {
        "base/kustomization.yaml": f"resources:\n  - {entry}\n".encode(),
        "app/kustomization.yaml": b"resources: [../base]\n",
    }
    app = AppConfig(repo="r", cluster="c", path="app")

    with pytest.raises(SourceRefused) as refused:
        await render_app(app, files, commit="c1", app_name="a", workdir=tmp_path)

    message = str(refused.value)
    assert message.startswith(f"base/kustomization.yaml: resources entry {entry!r} is a remote")
    assert "allow_remote_bases" in message


async def test_base_outside_the_repository_is_refused(tmp_path: Path) -> None:
    files = {"app/kustomization.yaml": b"resources: [../../outside]\n"}
    app = AppConfig(repo="r", cluster="c", path="app")

    with pytest.raises(SourceRefused, match="points outside the repository"):
        await render_app(app, files, commit="c1", app_name="a", workdir=tmp_path)


async def test_a_resync_of_the_same_commit_reuses_the_render(tmp_path: Path) -> None:
    files = {
        "app/kustomization.yaml": b"resources: [cm.yaml]\n",
        "app/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    }
    renderer = Renderer(tmp_path / "snapshots")
    app = AppConfig(repo="r", cluster="c", path="app")

    first = await renderer.render(app, files, commit="c1", app_name="a")
    again = await renderer.render(app, files, commit="c1", app_name="a")
    changed = await renderer.render(
        app.model_copy(update={"namespace": "other"}), files, commit="c1", app_name="a"
    )
    await renderer.render(app, files, commit="c2", app_name="a")

    assert first == again == changed
    assert renderer.renders == 3, "same commit and settings rendered once; others rendered anew"


async def test_snapshots_are_removed_after_rendering(tmp_path: Path) -> None:
    files = {"app/kustomization.yaml": b"resources: [missing.yaml]\n"}
    workdir = tmp_path / "snapshots"
    app = AppConfig(repo="r", cluster="c", path="app")

    with pytest.raises(RenderError):
        await render_app(app, files, commit="c1", app_name="a", workdir=workdir)

    assert list(workdir.iterdir()) == []
