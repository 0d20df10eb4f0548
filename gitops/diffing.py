"""`gitops diff APP`: how the live cluster differs from Git, without changing anything.

It runs the same comparison as the syncers' drift check (`syncer.drift.detect`, a
server-side dry-run apply compared with the live objects) against the commit the app
last applied, or the branch head when it was never applied, and skips the inventory
shortcut so the answer is right even when the inventory is stale. Exit 0: no drift;
1: drift (each object named with its changed fields, then a unified diff); 2: the app
is unknown or the cluster or the repository could not be read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from gitops.generated import with_generated
from schemas import GitopsConfig
from schemas.types import CommitSha
from syncer.desired import DesiredState
from syncer.drift import DriftCheckError, ObjectDrift, detect
from syncer.errors import SyncError
from syncer.gitcache import GitCache
from syncer.giterrors import GitError
from syncer.inventory import InventoryStore
from syncer.kube import Cluster
from syncer.sources import Renderer
from syncer.sources.decryption import Decryptor

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


def _label(drift: ObjectDrift) -> str:
    obj = drift.summary
    where = f"{obj.namespace}/" if obj.namespace else ""
    return f"{obj.kind} {where}{obj.name}"


def _cli_cache(cache_dir: str) -> Path:
    """`~` expanded (a string operation, no I/O): the CLI's own mirrors under the cache."""
    return Path(os.path.expanduser(cache_dir)) / "cli"


def _fail(message: str) -> int:
    print(f"gitops diff: {message}", file=sys.stderr)
    return EXIT_USAGE


async def diff_app(config: GitopsConfig, *, app: str, as_json: bool) -> int:
    config, _ = await with_generated(config)
    spec = config.apps.get(app)
    if spec is None:
        known = ", ".join(sorted(config.apps)) or "none"
        return _fail(f"unknown app '{app}' (known: {known})")
    cluster_config = config.clusters.get(spec.cluster)
    repo = config.repositories.get(spec.repo)
    if cluster_config is None or repo is None:
        return _fail(f"app '{app}' names an unknown cluster or repository")
    # Our own mirror directory: a syncer on this machine may be fetching into its own.
    cache_dir = _cli_cache(config.syncer.cache_dir)
    decryptor: Decryptor | None = None
    try:
        async with (
            GitCache(cache_dir, max_file_bytes=config.syncer.max_file_bytes) as git,
            await Cluster.connect(spec.cluster, cluster_config) as cluster,
        ):
            store = InventoryStore(cluster, config.syncer.inventory_namespace)
            inventory = await store.load(app)
            applied = inventory.commit
            # SOPS files decrypt as the syncer decrypts them; their values never print.
            decryptor = Decryptor(
                cache_dir,
                clusters={spec.cluster: cluster},
                namespace=config.syncer.inventory_namespace,
            )
            renderer = Renderer(cache_dir / "snapshots", decryptor=decryptor)
            state = DesiredState(config=config, git=git, renderer=renderer)
            commit: CommitSha = applied or await state.resolve(app, spec, None)
            desired = await state.at(app, spec, commit, cluster)
            drifted = await detect(cluster, spec, desired, inventory, thorough=True)
    except (SyncError, GitError, DriftCheckError) as exc:
        message = f"app '{app}': {getattr(exc, 'message', None) or exc}"
        return _fail(decryptor.scrub(message) if decryptor else message)
    scrub = decryptor.scrub
    basis = "last applied" if applied else f"head of {spec.branch}, never applied"
    if as_json:
        doc = {
            "app": app,
            "cluster": spec.cluster,
            "commit": commit,
            "applied": applied is not None,
            "objects": len(desired.objects),
            "drifted": [
                {**d.summary.model_dump(exclude_none=True), "diff": scrub(d.unified_diff())}
                for d in drifted
            ],
        }
        print(json.dumps(doc, indent=2))
        return EXIT_FINDING if drifted else EXIT_OK
    print(f"app {app}: cluster {spec.cluster}, commit {commit[:12]} ({basis})")
    for drift in drifted:
        if drift.summary.state == "missing":
            print(f"{_label(drift)}: missing from the cluster")
        else:
            print(f"{_label(drift)}: changed {', '.join(drift.summary.fields)}")
    for drift in drifted:
        print()
        print(scrub(drift.unified_diff()), end="")
    if drifted:
        print(f"\n{len(drifted)} of {len(desired.objects)} objects differ from Git")
        return EXIT_FINDING
    print(f"no drift: {len(desired.objects)} objects match Git")
    return EXIT_OK
