"""App sources: plain directories, Kustomize overlays and Helm charts, rendered offline.

The syncer reads an app's files from the git cache and hands them to a `Renderer`; what
comes back is a files dict of YAML that the manifest loader treats like any directory.
Kustomize and Helm run in child processes on a snapshot of the commit under the
worker's cache dir, with the network refused by configuration checks before they start.
"""

from syncer.sources.detect import detect_source
from syncer.sources.errors import RenderError, RenderTimeout, SourceRefused
from syncer.sources.rendering import Renderer, TreeReader, render_app, settings_digest

__all__ = [
    "RenderError",
    "RenderTimeout",
    "Renderer",
    "SourceRefused",
    "TreeReader",
    "detect_source",
    "render_app",
    "settings_digest",
]
