"""The `git_server` fixture serves real repositories that the git CLI pushes and dulwich reads."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from dulwich import porcelain
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from gitops.gitserver import GitHttpServer
from tests.support.git import WorkingCopy


def _read(repo: Repo, commit_id: bytes, path: str) -> bytes:
    commit = repo[commit_id]
    assert isinstance(commit, Commit)
    tree = repo[commit.tree]
    assert isinstance(tree, Tree)
    _, sha = tree.lookup_path(repo.object_store.__getitem__, path.encode())
    blob = repo[sha]
    assert isinstance(blob, Blob)
    return blob.data


async def test_server_serves_on_loopback_and_stops(tmp_path: Path) -> None:
    """Start-up time is measured by `bench/bench_startup.py`, not asserted here."""
    async with GitHttpServer(tmp_path / "srv") as server:
        assert server.url.startswith("http://127.0.0.1:")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


async def test_dulwich_clones_a_pushed_commit_and_reads_its_tree_without_checkout(
    working_copy: Callable[..., WorkingCopy], tmp_path: Path
) -> None:
    wc = working_copy("platform")
    sha = wc.commit_and_push({"apps/web/deploy.yaml": "kind: ConfigMap\n"})

    target = tmp_path / "cache.git"
    repo = await asyncio.to_thread(
        porcelain.clone, wc.remote_url, str(target), bare=True, checkout=False
    )
    try:
        assert repo.refs[b"refs/heads/main"] == sha.encode()
        assert _read(repo, sha.encode(), "apps/web/deploy.yaml") == b"kind: ConfigMap\n"
        assert not (target / "apps").exists()
    finally:
        repo.close()


async def test_dulwich_fetches_a_second_commit_incrementally(
    working_copy: Callable[..., WorkingCopy], tmp_path: Path
) -> None:
    wc = working_copy()
    wc.commit_and_push({"a.yaml": "a: 1\n"})
    target = tmp_path / "cache.git"
    clone = porcelain.clone
    (await asyncio.to_thread(clone, wc.remote_url, str(target), bare=True, checkout=False)).close()

    second = wc.commit_and_push({"a.yaml": "a: 2\n"})
    with Repo(str(target)) as repo:
        result = await asyncio.to_thread(porcelain.fetch, repo, "origin")
        assert result.refs[b"refs/heads/main"] == second.encode()
        assert repo.refs[b"refs/remotes/origin/main"] == second.encode()
        assert _read(repo, second.encode(), "a.yaml") == b"a: 2\n"


async def test_git_cli_clones_from_the_server(
    working_copy: Callable[..., WorkingCopy], tmp_path: Path
) -> None:
    wc = working_copy()
    sha = wc.commit_and_push({"x.txt": "x\n"})
    clone = await asyncio.create_subprocess_exec(
        "git", "clone", "--quiet", "--bare", wc.remote_url, str(tmp_path / "c")
    )
    assert await clone.wait() == 0
    out = subprocess.run(
        ["git", "-C", str(tmp_path / "c"), "rev-parse", "main"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == sha
