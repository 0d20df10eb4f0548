"""The test bench: a real Kafka-protocol broker and a real Git server, on 127.0.0.1.

Each fixture starts its server in well under two seconds and stops it even when the
test fails, so no process outlives the run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from gitops.broker import EmbeddedBroker
from gitops.gitserver import GitHttpServer
from tests.support.git import WorkingCopy
from tests.support.threaded import in_thread

os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
async def kafka(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A fresh Tansu broker per test: its bootstrap address is `kafka.bootstrap`."""
    async with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        yield broker


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitHttpServer]:
    """Bare repositories served over smart HTTP by `git http-backend`.

    It runs on its own thread's event loop, so blocking git clients in tests cannot stall it.
    """
    with in_thread(GitHttpServer(tmp_path / "git-server")) as server:
        yield server


_names = itertools.count()


@pytest.fixture
def working_copy(tmp_path: Path, git_server: GitHttpServer) -> Callable[..., WorkingCopy]:
    """Make a served repository and a working copy of it: `working_copy("platform")`."""

    def make(name: str | None = None, branch: str = "main") -> WorkingCopy:
        repo = name or f"repo{next(_names)}"
        git_server.create_repo(repo, default_branch=branch)
        return WorkingCopy(tmp_path / "work" / repo, git_server.repo_url(repo), branch)

    return make


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id unique to this test (Tansu can wedge a group after a SIGKILL)."""
    return f"test-{request.node.name}-{os.getpid()}-{next(_names)}"
