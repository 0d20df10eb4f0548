"""`gitops diff APP`: how the live cluster differs from Git, without changing anything.

It runs the same comparison as the syncers' drift check (`syncer.drift.detect`, a
server-side dry-run apply compared with the live objects) against the commit the app
last applied, or the branch head when it was never applied, and skips the inventory
shortcut so the answer is right even when the inventory is stale. Exit 0: no drift;
1: drift (each object named with its changed fields, then a unified diff); 2: the app
is unknown, its kubeconfig cannot be loaded or its commit cannot be rendered; 3: the
cluster's API server or the Git host did not answer (so a script never reads an outage
as drift).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from gitops.generated import with_generated
from schemas import GitopsConfig
from schemas.errors import EXIT_UNAVAILABLE
from syncer.drift import ObjectDrift
from syncer.errors import SyncError
from syncer.gitcache import GitCache
from syncer.kube import Cluster
from syncer.livediff import LiveDiffError, diff_live
from syncer.retrying import RetryPolicy

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2
RETRY_NOTE = "; will retry"
"""How a syncer's git errors end; this command does not retry, so it is cut off."""


def _label(drift: ObjectDrift) -> str:
    obj = drift.summary
    where = f"{obj.namespace}/" if obj.namespace else ""
    return f"{obj.kind} {where}{obj.name}"


def _cli_cache(cache_dir: str) -> Path:
    """`~` expanded (a string operation, no I/O): the CLI's own mirrors under the cache."""
    return Path(os.path.expanduser(cache_dir)) / "cli"


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"gitops diff: {message.removesuffix(RETRY_NOTE)}", file=sys.stderr)
    return code


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
    try:
        async with (
            GitCache(cache_dir, max_file_bytes=config.syncer.max_file_bytes) as git,
            await Cluster.connect(
                spec.cluster,
                cluster_config,
                request_timeout=config.syncer.api_timeout.total_seconds(),
                retry=RetryPolicy.from_settings(config.syncer),
            ) as cluster,
        ):
            found = await diff_live(config, app, git=git, cluster=cluster, workdir=cache_dir)
    except LiveDiffError as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE if exc.unavailable else EXIT_USAGE)
    except SyncError as exc:  # the cluster's configuration could not be loaded
        return _fail(f"app '{app}': {exc.message}")
    commit, drifted, objects = found.commit, found.drifted, found.objects
    texts = found.unified_diffs()
    basis = "last applied" if found.applied else f"head of {spec.branch}, never applied"
    if as_json:
        doc = {
            "app": app,
            "cluster": spec.cluster,
            "commit": commit,
            "applied": found.applied,
            "objects": objects,
            "drifted": [
                {**d.summary.model_dump(exclude_none=True), "diff": text}
                for d, text in zip(drifted, texts, strict=True)
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
    for text in texts:
        print()
        print(text, end="")
    if drifted:
        print(f"\n{len(drifted)} of {objects} objects differ from Git")
        return EXIT_FINDING
    print(f"no drift: {objects} objects match Git")
    return EXIT_OK
