"""Fixtures: the server under test, a kubernetes_asyncio client on it, and kubectl.

The conformance tests run twice, the same code for both: once on the emulator (a fresh
``DevCluster`` per test, as ``gitops up`` starts it) and once on the test bed's real
kube-apiserver v1.37 (the `server` fixture's params). The bed is shared by the whole run,
so every test works in a namespace of its own (`ns`) and takes every cluster-scoped name
from ``server.name(prefix)``; what it made there is deleted when it ends. Tests of the
emulator's own machinery (its HTTP layer, faults, the DevCluster object, protobuf tables)
run on the emulator only: they carry :func:`emulator_only`. A difference the emulator
keeps on purpose is an :func:`emulator_differs` mark: a strict xfail on the emulator
side only, so the agreement table (docs/emulator-agreement.md) stays honest and a fix
flips it.

Everything talks HTTP(S) to the server, exactly as to any apiserver. kubectl runs as an
asyncio subprocess because the emulator shares the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient

from devcluster import DevCluster
from tests.support.bed import RealCluster, unique_name

EMULATOR = "emulator"
REAL = "real"
SERVERS = (EMULATOR, REAL)


def emulator_only(reason: str) -> pytest.MarkDecorator:
    """For tests of the emulator's own machinery or knobs, which the real server lacks."""
    return pytest.mark.emulator_only(reason=reason)


def emulator_differs(reason: str) -> pytest.MarkDecorator:
    """The test asserts what the real server does; the emulator does otherwise, on
    purpose or not yet (``reason`` says how and whether a ``gitops up`` user meets it)."""
    return pytest.mark.parametrize(
        "server",
        [pytest.param(EMULATOR, marks=pytest.mark.xfail(strict=True, reason=reason)), REAL],
        indirect=True,
    )


@dataclass
class KubectlResult:
    code: int
    stdout: str
    stderr: str


Kubectl = Callable[..., Awaitable[KubectlResult]]

_CLUSTER_SCOPED = (
    ("/api/v1", "namespaces"),
    ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions"),
    ("/apis/rbac.authorization.k8s.io/v1", "clusterroles"),
    ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("/apis/scheduling.k8s.io/v1", "priorityclasses"),
)


@dataclass
class Server:
    """One API server under test: ``kind`` is ``"emulator"`` or ``"real"``."""

    kind: str
    api: ApiClient
    kubeconfig: dict[str, Any]
    devcluster: DevCluster | None = None
    names: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return str(self.api.configuration.host)

    @property
    def emulated(self) -> bool:
        return self.devcluster is not None

    def name(self, prefix: str) -> str:
        """A name of this test's own, for namespaces and cluster-scoped objects (a CRD's
        group too); what carries it is deleted from the real server when the test ends."""
        made = unique_name(prefix)
        self.names.add(made)
        return made

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        config = yaml.safe_load(yaml.safe_dump(self.kubeconfig))
        for context in config["contexts"]:
            context["context"]["namespace"] = namespace
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    async def forget(self) -> None:
        """Delete what carries one of this test's names (none of it is anyone else's)."""
        pool = self.api.rest_client.pool_manager
        for prefix, plural in _CLUSTER_SCOPED:
            async with pool.get(f"{self.url}{prefix}/{plural}") as resp:
                items = (await resp.json()).get("items") or []
            for item in items:
                name = item["metadata"]["name"]
                if set(name.split(".")) & self.names:
                    async with pool.delete(f"{self.url}{prefix}/{plural}/{name}"):
                        pass


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator_only(reason): runs on the emulator only, never on the bed"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the server runs on both, unless it says otherwise."""
    if "server" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "server" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return  # emulator_differs
    only = metafunc.definition.get_closest_marker("emulator_only")
    metafunc.parametrize("server", [EMULATOR] if only else list(SERVERS), indirect=True)


@pytest.fixture(autouse=True)
def _agreement(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> None:
    """Name, in the JUnit report, why a test runs on the emulator only (read by
    bench/emulator_agreement.py, which writes docs/emulator-agreement.md)."""
    only = request.node.get_closest_marker("emulator_only")
    if only is not None:
        record_property("emulator_only", only.kwargs.get("reason", ""))


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    if request.param == EMULATOR:
        async with (
            DevCluster(ready_delay=0.2, bookmark_interval=0.3) as cluster,
            ApiClient(Configuration(host=cluster.url)) as client,
        ):
            yield Server(EMULATOR, client, cluster.kubeconfig_dict(), cluster)
        return
    real: RealCluster = request.getfixturevalue("real_cluster")
    client = await real.client()
    target = Server(REAL, client, yaml.safe_load(real.kubeconfig.read_text()))
    try:
        yield target
    finally:
        with contextlib.suppress(Exception):
            await target.forget()
        await client.close()


@pytest.fixture
def devcluster(server: Server) -> DevCluster:
    """The emulator itself, for tests of its own knobs (emulator-only tests)."""
    assert server.devcluster is not None, "an emulator-only test ran on the real server"
    return server.devcluster


@pytest.fixture
def k8s_api(server: Server) -> ApiClient:
    return server.api


_discoveries = itertools.count()


async def fresh_dynamic(k8s_api: ApiClient, tmp_path: Path) -> DynamicClient:
    """A dynamic client that discovers anew: its discovery cache is a file of its own
    (kubernetes_asyncio's default is one file per server URL in /tmp, which every test
    on the shared bed, in every worker, would read and write)."""
    cache = tmp_path / f"discovery-{next(_discoveries)}.json"
    return await DynamicClient(k8s_api, cache_file=str(cache))


@pytest.fixture
async def dynamic(k8s_api: ApiClient, tmp_path: Path) -> DynamicClient:
    return await fresh_dynamic(k8s_api, tmp_path)


async def settled_namespace(server: Server, prefix: str = "ns") -> str:
    """Create a namespace of this test's own and wait for what every namespace gets: the
    ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap (controllers add
    them on the real server a moment after the namespace appears)."""
    name = server.name(prefix)
    core = CoreV1Api(server.api)
    await core.create_namespace({"metadata": {"name": name}})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        try:
            await core.read_namespaced_service_account("default", name)
            await core.read_namespaced_config_map("kube-root-ca.crt", name)
            return name
        except ApiException as exc:
            if exc.status != 404 or loop.time() > deadline:
                raise
        await asyncio.sleep(0.02)


async def free_node_port(server: Server) -> int:
    """A node port no Service holds now (node ports are cluster-wide; picked at random, so
    tests running at the same time pick different ones)."""
    listing = await CoreV1Api(server.api).list_service_for_all_namespaces()
    taken = {p.node_port for s in listing.items for p in (s.spec.ports or []) if p.node_port}
    return random.choice([n for n in range(30000, 32768) if n not in taken])


@pytest.fixture
async def ns(server: Server) -> str:
    """This test's namespace, created and settled."""
    return await settled_namespace(server)


@pytest.fixture
def kubeconfig(server: Server, ns: str, tmp_path: Path) -> Path:
    """The server's kubeconfig, its context's namespace the test's own."""
    return server.write_kubeconfig(tmp_path / "kubeconfig", ns)


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}

    async def run(
        *args: str, stdin: str | None = None, extra_env: dict[str, str] | None = None
    ) -> KubectlResult:
        proc = await asyncio.create_subprocess_exec(
            "kubectl",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**env, **(extra_env or {})},
        )
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), 30
        )
        assert proc.returncode is not None
        return KubectlResult(proc.returncode, out.decode(), err.decode())

    return run
