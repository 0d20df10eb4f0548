"""Which apps a push triggers when the payload lists its changed files."""

from __future__ import annotations

import time

from receiver.matching import Registry
from receiver.pushes import Push
from schemas import CommitSha, parse_config

CONFIG = """
clusters: {c: {kubeconfig: /k}}
repositories:
  r: {url: https://git.example/acme/r.git, webhook_secret: {value: s}}
apps:
  plain: {repo: r, path: apps/plain, cluster: c}
  overlay: {repo: r, path: apps/overlay, cluster: c, source: kustomize}
  chart: {repo: r, path: charts/web, cluster: c, source: helm,
          helm: {value_files: [values/prod.yaml]}}
"""


def _push(*changed: str) -> Push:
    return Push(
        ref="refs/heads/main",
        before=None,
        after=CommitSha("a" * 40),
        repo_urls=("https://git.example/acme/r",),
        changed_paths=changed,
    )


def _triggered(*changed: str) -> set[str]:
    registry = Registry(parse_config(CONFIG))
    return {str(app) for app, _ in registry.needing_sync(_push(*changed), ["r"])}


def test_a_change_outside_every_app_triggers_only_kustomize_apps() -> None:
    """An explicit Kustomize app may use bases anywhere in the repository."""
    assert _triggered("docs/readme.md") == {"overlay"}


def test_a_change_inside_a_directory_app_triggers_it() -> None:
    assert _triggered("apps/plain/deploy.yaml") == {"plain", "overlay"}


def test_a_helm_value_file_outside_the_chart_triggers_the_chart() -> None:
    assert _triggered("values/prod.yaml") == {"chart", "overlay"}


def test_a_sibling_directory_with_a_longer_name_does_not_trigger_an_app() -> None:
    assert _triggered("apps/plain-old/deploy.yaml") == {"overlay"}


def test_one_push_touching_a_thousand_apps_triggers_exactly_those_apps_at_once() -> None:
    apps = "\n".join(
        f"  a{i:04d}: {{repo: r, path: apps/a{i:04d}, cluster: c}}" for i in range(1000)
    )
    config = parse_config(CONFIG.split("apps:")[0] + "apps:\n" + apps + "\n")
    touched = [f"apps/a{i:04d}/{kind}.yaml" for i in range(0, 1000, 2) for kind in "abcd"]
    started = time.perf_counter()
    triggered = Registry(config).needing_sync(_push(*touched), ["r"])
    took = time.perf_counter() - started

    assert {str(app) for app, _ in triggered} == {f"a{i:04d}" for i in range(0, 1000, 2)}
    assert took < 0.25, f"matching 2,000 files against 1,000 apps took {took:.2f} s"
