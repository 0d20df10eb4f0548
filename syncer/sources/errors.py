"""Why a kustomization or chart could not be turned into manifests.

Each error carries its retry policy through `syncer.errors`: a tool that refuses the
input (a broken template, a missing base) or a source that would need the network is
permanent — only a new commit or config change fixes it; a tool that did not finish in
time may have been starved by a busy worker, so it is worth one more attempt.
"""

from __future__ import annotations

from syncer.errors import PermanentSyncError, TransientSyncError


class RenderError(PermanentSyncError):
    """Kustomize or Helm refused the commit; the message carries the tool's own words."""


class SourceRefused(PermanentSyncError):
    """The source reaches outside the commit (remote base, network chart dependency,
    a path escaping the repository) and the config does not allow it."""


class RenderTimeout(TransientSyncError):
    """The renderer did not finish in time; it was killed and the sync may be retried."""
