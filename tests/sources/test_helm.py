"""Helm apps: a chart in Git renders exactly as the Helm SDK renders it directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from schemas.config import AppConfig
from syncer.gitcache import GitCache
from syncer.sources import RenderError, SourceRefused, render_app
from tests.sources.conftest import by_identity, fetch, objects
from tests.support.git import WorkingCopy

CHART = {
    "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "charts/web/values.yaml": """\
replicas: 1
image: {repository: nginx, tag: "1.25"}
config: {LOG_LEVEL: debug, COLOR: blue}
""",
    "charts/web/templates/_helpers.tpl": """\
{{- define "web.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
""",
    "charts/web/templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {{- include "web.labels" . | nindent 6 }}
  template:
    metadata:
      labels: {{- include "web.labels" . | nindent 8 }}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
""",
    "charts/web/templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
data:
  {{- range $k, $v := .Values.config }}
  {{ $k }}: {{ $v | quote }}
  {{- end }}
""",
    "charts/web/templates/optional.yaml": """\
{{- if .Values.extra }}
apiVersion: v1
kind: ConfigMap
metadata: {name: extra}
{{- end }}
""",
    "charts/web/templates/NOTES.txt": "Installed {{ .Release.Name }}.\n",
    "charts/web/templates/tests/test-connection.yaml": """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {"helm.sh/hook": test}
spec:
  containers: [{name: t, image: busybox}]
""",
    "envs/prod.yaml": "replicas: 3\nconfig: {LOG_LEVEL: info}\n",
}


def chart_app(**helm_settings: Any) -> AppConfig:
    return AppConfig.model_validate(
        {
            "repo": "platform",
            "cluster": "dev",
            "path": "charts/web",
            "namespace": "web",
            "helm": helm_settings,
        }
    )


def helm_directly(chart: Path, values: dict[str, Any], name: str, namespace: str) -> list[Any]:
    """The reference: the Helm SDK on the working copy, NOTES and test hooks left out."""
    with helm.Chart.load(chart) as loaded:
        rendered = loaded.render(values, name=name, namespace=namespace)
    docs = []
    for key, text in rendered.items():
        if key.endswith("NOTES.txt") or "/tests/" in key:
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


async def test_chart_renders_what_the_helm_sdk_renders_with_values_layered(
    working_copy: Callable[..., WorkingCopy], cache: GitCache, tmp_path: Path
) -> None:
    repo = working_copy()
    repo.commit_and_push(CHART)
    app = chart_app(value_files=["envs/prod.yaml"], values={"image": {"tag": "1.27"}})
    commit, files, tree = await fetch(cache, repo, app)

    async def read_tree() -> dict[str, bytes]:
        return tree

    rendered = await render_app(
        app, files, commit=commit, app_name="web", workdir=tmp_path / "w", read_tree=read_tree
    )

    assert sorted(rendered) == [
        "helm://charts/web/templates/configmap.yaml",
        "helm://charts/web/templates/deployment.yaml",
    ], "NOTES.txt, empty templates and test hooks are not applied"
    layered = {
        "replicas": 3,
        "config": {"LOG_LEVEL": "info"},
        "image": {"tag": "1.27"},
    }
    expected = helm_directly(repo.path / "charts/web", layered, "web", "web")
    got = objects(rendered)
    assert by_identity(got) == by_identity(expected)
    deployment = next(o for o in got if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    config = next(o for o in got if o["kind"] == "ConfigMap")
    assert config["data"] == {"LOG_LEVEL": "info", "COLOR": "blue"}


async def test_release_name_setting_overrides_the_app_name(tmp_path: Path) -> None:
    files = {k: v.encode() for k, v in CHART.items() if k.startswith("charts/")}

    rendered = await render_app(
        chart_app(release_name="shop"), files, commit="c1", app_name="web", workdir=tmp_path
    )

    assert {o["metadata"]["name"] for o in objects(rendered)} == {"shop", "shop-config"}


async def test_broken_template_fails_with_helms_own_message(tmp_path: Path) -> None:
    files = {k: v.encode() for k, v in CHART.items() if k.startswith("charts/")}
    files["charts/web/templates/broken.yaml"] = b"value: {{ .Values.missing.deeper }}\n"

    with pytest.raises(RenderError) as failure:
        await render_app(chart_app(), files, commit="c1", app_name="web", workdir=tmp_path)

    message = str(failure.value)
    assert message.startswith("helm template charts/web failed:")
    assert "web/templates/broken.yaml" in message
    assert "nil pointer evaluating" in message


async def test_dependency_that_needs_the_network_is_refused(tmp_path: Path) -> None:
    files = {k: v.encode() for k, v in CHART.items() if k.startswith("charts/")}
    files["charts/web/Chart.yaml"] = b"""\
apiVersion: v2
name: web
version: 0.1.0
dependencies:
  - name: redis
    version: 18.x
    repository: https://charts.bitnami.com/bitnami
"""

    with pytest.raises(SourceRefused) as refused:
        await render_app(chart_app(), files, commit="c1", app_name="web", workdir=tmp_path)

    message = str(refused.value)
    assert "charts/web/Chart.yaml: dependency 'redis'" in message
    assert "would need the network" in message
    assert "helm dependency build" in message


async def test_vendored_dependency_is_rendered(tmp_path: Path) -> None:
    files = {k: v.encode() for k, v in CHART.items() if k.startswith("charts/")}
    files["charts/web/Chart.yaml"] = (
        b"apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n"
        b"  - {name: cache, version: 0.1.0, repository: https://charts.example.test}\n"
    )
    files["charts/web/charts/cache/Chart.yaml"] = b"apiVersion: v2\nname: cache\nversion: 0.1.0\n"
    files["charts/web/charts/cache/templates/cm.yaml"] = (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-cache'}\n"
    )

    rendered = await render_app(chart_app(), files, commit="c1", app_name="web", workdir=tmp_path)

    assert "web-cache" in {o["metadata"]["name"] for o in objects(rendered)}


async def test_missing_value_file_names_the_file(tmp_path: Path) -> None:
    files = {k: v.encode() for k, v in CHART.items() if k.startswith("charts/")}

    with pytest.raises(RenderError, match=r"value file 'envs/nope\.yaml' is not in the commit"):
        await render_app(
            chart_app(value_files=["envs/nope.yaml"]),
            files,
            commit="c1",
            app_name="web",
            workdir=tmp_path,
        )
