"""Fixtures for the deployment tests: the Kubernetes API emulator and a client on it.

The emulator serves on the test's own event loop, so anything that talks to it from a
test (kubectl included) runs as an asyncio subprocess, never a blocking call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.dynamic import DynamicClient

from devcluster import DevCluster


@pytest.fixture
async def cluster() -> AsyncIterator[DevCluster]:
    async with DevCluster(ready_delay=0.2) as running:
        yield running


@pytest.fixture
async def dynamic(cluster: DevCluster) -> AsyncIterator[DynamicClient]:
    async with ApiClient(Configuration(host=cluster.url)) as api:
        yield await DynamicClient(api)
