"""The test bench: the real test bed (kube-apiserver, Apache Kafka), a real Git server,
and the embedded broker (Tansu) for the tests that are about it, all on 127.0.0.1.

The bed is started once per run and shared (see `tests/support/bed.py`); each test is
isolated by its own namespaces, topic prefix and consumer group id. Per-test servers stop
even when the test fails, so no process outlives the run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from gitops.broker import EmbeddedBroker
from gitops.gitserver import GitHttpServer
from testbed.bed import Bed
from tests.support.bed import RealCluster, RealKafka, ensure_bed, stop_if_owned, unique_name
from tests.support.git import WorkingCopy
from tests.support.threaded import in_thread

os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        os.environ.setdefault("GITOPS_TESTBED_OWNER", f"pytest-{os.getpid()}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        stop_if_owned(os.environ.get("GITOPS_TESTBED_OWNER", ""))


@pytest.fixture(scope="session")
def bed() -> Bed:
    """The run's real test bed, started on first use (`python -m testbed up` by hand)."""
    return ensure_bed()


@pytest.fixture
def kafka(bed: Bed) -> RealKafka:
    """The bed's Apache Kafka: `kafka.bootstrap`, and `kafka.topic_prefix` for this test."""
    assert bed.kafka_bootstrap, "the test bed runs without Kafka"
    return RealKafka(bed.kafka_bootstrap, unique_name("t"))


@pytest.fixture
def real_cluster(bed: Bed) -> RealCluster:
    """The bed's kube-apiserver v1.37 with controllers, scheduler and kwok nodes."""
    assert bed.kubeconfig, "the test bed runs without Kubernetes"
    return RealCluster(bed.kubeconfig)


@pytest.fixture
def namespace() -> str:
    """A namespace name of this test's own (created by whoever applies into it)."""
    return unique_name("ns")


@pytest.fixture
async def tansu(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A fresh Tansu broker per test, for tests of the embedded default or of outages."""
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
