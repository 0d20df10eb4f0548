"""Fixtures: a running DevCluster, a kubernetes_asyncio client on it, and kubectl.

Everything talks to the emulator over HTTP, exactly as to a real apiserver. kubectl runs
as an asyncio subprocess because the emulator shares the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.dynamic import DynamicClient

from devcluster import DevCluster


@dataclass
class KubectlResult:
    code: int
    stdout: str
    stderr: str


Kubectl = Callable[..., Awaitable[KubectlResult]]


@pytest.fixture
async def devcluster() -> AsyncIterator[DevCluster]:
    async with DevCluster(ready_delay=0.2, bookmark_interval=0.3) as cluster:
        yield cluster


@pytest.fixture
async def k8s_api(devcluster: DevCluster) -> AsyncIterator[ApiClient]:
    configuration = Configuration(host=devcluster.url)
    async with ApiClient(configuration) as client:
        yield client


@pytest.fixture
async def dynamic(k8s_api: ApiClient) -> DynamicClient:
    return await DynamicClient(k8s_api)


@pytest.fixture
def kubeconfig(devcluster: DevCluster, tmp_path: Path) -> Path:
    return devcluster.write_kubeconfig(tmp_path / "kubeconfig")


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
