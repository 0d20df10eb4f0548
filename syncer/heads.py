"""Branch heads: the commit each branch of a repository points at, read without fetching.

The poller compares them with what was applied, the lifecycle with the commit a
dependency was ready at, the app-set generator with the commit it generated from. One
`ls-remote` answers for every branch of a repository, so callers ask once per repository
and look each branch up in the answer here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from schemas import RepositoryConfig
from schemas.types import CommitSha


class HeadSource(Protocol):
    """Branch heads of a repository without fetching (`syncer.gitcache.GitCache.ls_remote`)."""

    async def ls_remote(self, repo: RepositoryConfig) -> Mapping[str, CommitSha]: ...


def branch_ref(branch: str) -> str:
    """The ref a branch is known by on the server and in push events."""
    return f"refs/heads/{branch}"


def branch_head(heads: Mapping[str, CommitSha], branch: str) -> CommitSha | None:
    """The commit `branch` points at in an `ls_remote` answer; None when it is not there."""
    return heads.get(branch_ref(branch))
