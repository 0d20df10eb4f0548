"""How an app's live objects differ from Git now: the one comparison `gitops diff` prints
and the dashboard shows.

It compares against the commit the app last applied (from its inventory), or the branch
head when it was never applied, and runs the drift check `thorough`ly (no inventory
shortcut), so the answer is right even when the inventory is stale. Nothing is written:
the comparison is a server-side dry-run apply. SOPS files decrypt as the syncer decrypts
them, and every text that leaves here (diffs, error messages) is scrubbed of what the
decryption revealed; Secret values are masked by `ObjectDrift.unified_diff` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas import GitopsConfig
from schemas.types import CommitSha
from syncer.desired import DesiredState
from syncer.drift import DriftCheckError, ObjectDrift, detect
from syncer.errors import RetriesExhausted, SyncError, TransientSyncError
from syncer.gitcache import GitCache
from syncer.giterrors import GitError, TransientGitError
from syncer.inventory import InventoryStore
from syncer.kube import Cluster
from syncer.sources import Renderer
from syncer.sources.decryption import Decryptor


class LiveDiffError(Exception):
    """The cluster or the repository could not be read; the message is safe to print.

    `unavailable` when the cause was an answer that did not come (an API server or Git
    host unreachable, its retries spent): asking again later may succeed; otherwise the
    configuration or the commit has to change."""

    def __init__(self, message: str, *, unavailable: bool) -> None:
        super().__init__(message)
        self.unavailable = unavailable


@dataclass(frozen=True)
class LiveDiff:
    """The answer for one app: what was compared and which objects differ."""

    app: str
    cluster: str
    commit: CommitSha
    applied: bool
    """Whether `commit` is the last applied one (else the branch head, never applied)."""
    objects: int
    """How many objects Git declares at `commit`."""
    drifted: list[ObjectDrift]
    scrub: Callable[[str], str]
    """Removes every value the decryption of this commit revealed."""

    def unified_diffs(self) -> list[str]:
        """One diff per drifted object, as printed: Secret values masked, SOPS ones scrubbed."""
        return [self.scrub(drift.unified_diff()) for drift in self.drifted]


async def diff_live(
    config: GitopsConfig, app: str, *, git: GitCache, cluster: Cluster, workdir: Path
) -> LiveDiff:
    """Compare one configured app; raises `LiveDiffError`. `workdir` holds decryption and
    render scratch space of the caller's own (not a syncer's)."""
    spec = config.apps[app]
    decryptor = Decryptor(
        workdir, clusters={spec.cluster: cluster}, namespace=config.syncer.inventory_namespace
    )
    try:
        inventory = await InventoryStore(cluster, config.syncer.inventory_namespace).load(app)
        applied = inventory.commit
        renderer = Renderer(workdir / "snapshots", decryptor=decryptor)
        state = DesiredState(config=config, git=git, renderer=renderer)
        commit: CommitSha = applied or await state.resolve(app, spec, None)
        desired = await state.at(app, spec, commit, cluster)
        drifted = await detect(cluster, spec, desired, inventory, thorough=True)
    except (SyncError, GitError, DriftCheckError) as exc:
        message = f"app '{app}': {getattr(exc, 'message', None) or exc}"
        unavailable = isinstance(exc, TransientSyncError | RetriesExhausted | TransientGitError)
        raise LiveDiffError(decryptor.scrub(message), unavailable=unavailable) from exc
    return LiveDiff(
        app,
        spec.cluster,
        commit,
        applied is not None,
        len(desired.objects),
        drifted,
        decryptor.scrub,
    )
