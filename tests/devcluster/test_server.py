"""The DevCluster object itself: kubeconfig, lifecycle, serve()."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import aiohttp
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api

from devcluster import DevCluster
from devcluster.cli import serve
from tests.devcluster.conftest import emulator_only

pytestmark = emulator_only("the DevCluster object: its kubeconfig, start/stop and serve()")


async def test_kubeconfig_loads_into_kubernetes_asyncio(
    devcluster: DevCluster, tmp_path: Path
) -> None:
    """write_kubeconfig() produces a kubeconfig that kubernetes_asyncio loads as-is."""
    path = devcluster.write_kubeconfig(tmp_path / "kc")
    configuration = Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    async with ApiClient(configuration) as client:
        names = [n.metadata.name for n in (await CoreV1Api(client).list_namespace()).items]
    assert {"default", "kube-system", "kube-public"} <= set(names)


async def test_stop_is_safe_twice() -> None:
    """stop() may be called repeatedly (and after the context manager exits)."""
    cluster = DevCluster()
    await cluster.start()
    await cluster.stop()
    await cluster.stop()


async def test_stop_ends_open_watches() -> None:
    """Stopping the cluster ends open watch streams instead of hanging."""
    async with DevCluster() as cluster, aiohttp.ClientSession() as session:
        since = cluster.store.resource_version  # no initial events: the stream stays quiet
        resp = await session.get(
            f"{cluster.url}/api/v1/configmaps?watch=true&resourceVersion={since}"
        )
        await cluster.stop()
        assert await asyncio.wait_for(resp.read(), 5) == b""


async def test_serve_runs_until_cancelled(tmp_path: Path) -> None:
    """serve(host, port, kubeconfig_path) writes the kubeconfig and runs until cancelled."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kc.json"
    task = asyncio.create_task(serve("127.0.0.1", port, str(kubeconfig)))
    for _ in range(100):
        if kubeconfig.exists():
            break
        await asyncio.sleep(0.02)
    server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert server == f"http://127.0.0.1:{port}"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.done()
