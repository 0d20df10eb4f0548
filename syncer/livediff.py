"""How an app's live objects differ from Git now: the one comparison `gitops diff` prints
and the dashboard shows.

It compares against the commit the app last applied (from its inventory), or the branch
head when it was never applied, and runs the drift check `thorough`ly (no inventory
shortcut), so the answer is right even when the inventory is stale. Nothing is written:
the comparison is a server-side dry-run apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import GitopsConfig
from schemas.types import CommitSha
from syncer.drift import ObjectDrift, desired_from_git, detect
from syncer.gitcache import GitCache
from syncer.inventory import InventoryStore
from syncer.kube import Cluster


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


async def diff_live(config: GitopsConfig, app: str, *, git: GitCache, cluster: Cluster) -> LiveDiff:
    """Compare one configured app; raises `SyncError`, `GitError` or `DriftCheckError`."""
    spec = config.apps[app]
    repo = config.repositories[spec.repo]
    inventory = await InventoryStore(cluster, config.syncer.inventory_namespace).load(app)
    applied = inventory.commit
    commit: CommitSha = applied or await git.resolve(repo, spec.branch)
    manifests = await desired_from_git(config, git)(app, spec, commit)
    drifted = await detect(cluster, spec, manifests, inventory, thorough=True)
    return LiveDiff(app, spec.cluster, commit, applied is not None, len(manifests), drifted)
