"""Which renderer an app needs: a kustomization, a Helm chart, or a plain directory.

Argo CD and Flux both decide from the files in the app's path, so users do not have to
say it twice; an explicit `source:` in the config wins over what the files suggest.
"""

from __future__ import annotations

from collections.abc import Collection

from schemas.config import AppConfig, SourceKind

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
"""The names Kustomize itself accepts, in its own order of preference."""
CHART_FILE = "Chart.yaml"


def app_prefix(path: str) -> str:
    """The repo-relative prefix of files under `path` ('' for the repository root)."""
    cleaned = path.strip("/")
    return "" if cleaned in ("", ".") else cleaned.removeprefix("./") + "/"


def detect_source(app: AppConfig, paths: Collection[str]) -> SourceKind:
    """The app's source kind: its configured `source`, else what its files show.

    `paths` are repo-relative posix paths of (at least) the files under the app's path.
    A kustomization wins over a chart, as in Argo CD, because a kustomization may
    inflate a chart but never the other way round.
    """
    if app.source is not None:
        return app.source
    prefix = app_prefix(app.path)
    if any(prefix + name in paths for name in KUSTOMIZATION_FILES):
        return "kustomize"
    if prefix + CHART_FILE in paths:
        return "helm"
    return "directory"


def kustomization_file(directory: str, paths: Collection[str]) -> str | None:
    """The repo-relative kustomization file of `directory`, if it has one."""
    prefix = app_prefix(directory)
    for name in KUSTOMIZATION_FILES:
        if prefix + name in paths:
            return prefix + name
    return None
