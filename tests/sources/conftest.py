"""Sources test bench: repositories pushed with the git CLI, read back through the GitCache.

Renders are compared with what the real tools produce when run directly on the working
copy (`kubectl kustomize`, the Helm SDK), so the tests show the syncer renders exactly
what a user would get by hand.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.config import AppConfig, RepositoryConfig
from schemas.types import CommitSha
from syncer.gitcache import GitCache
from syncer.manifests import render
from tests.support.git import WorkingCopy


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[GitCache]:
    async with GitCache(tmp_path / "cache") as opened:
        yield opened


async def fetch(
    cache: GitCache, repo: WorkingCopy, app: AppConfig
) -> tuple[CommitSha, dict[str, bytes], dict[str, bytes]]:
    """Resolve the branch head; return (commit, the app's files, the whole tree)."""
    commit = await cache.resolve(RepositoryConfig(url=repo.remote_url), repo.branch)
    files = await cache.read_files(repo.remote_url, commit, app.path)
    tree = await cache.read_files(repo.remote_url, commit, ".")
    return commit, files, tree


def objects(files: dict[str, bytes]) -> list[dict[str, Any]]:
    """What the syncer's manifest loader makes of rendered files."""
    return [m.body for m in render(files)]


def kubectl_kustomize(directory: Path) -> list[dict[str, Any]]:
    """The reference: real Kustomize run by hand on the working copy."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], check=True, capture_output=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_identity(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        items,
        key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]),
    )


# The syncer bench (the bed's cluster and Kafka, a config builder) for end-to-end tests.
# The real sops and age-keygen, built by the test bed (tests/support/sops.py).
from tests.support.sops import age_key, age_keygen, sops_binary, sops_path  # noqa: E402, F401
from tests.syncer.conftest import (  # noqa: E402, F401
    bench,
    cluster,
    inventory_namespace,
    k8s,
    kubeconfig,
)
