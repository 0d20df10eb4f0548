"""Fixtures for the deployment tests: the bed's real kube-apiserver and clients on it.

The chart is installed (dry run) into a namespace of the test's own, created here and
deleted afterwards; the release name is the test's own too, so the chart's cluster-scoped
objects (ClusterRole, ClusterRoleBinding) never share a name with another test's.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient

from tests.support.bed import RealCluster, unique_name


@pytest.fixture
async def api(real_cluster: RealCluster) -> AsyncIterator[ApiClient]:
    client = await real_cluster.client()
    async with client:
        yield client


@pytest.fixture
async def dynamic(api: ApiClient) -> DynamicClient:
    client: DynamicClient = await DynamicClient(api)
    return client


@pytest.fixture
async def http(real_cluster: RealCluster) -> AsyncIterator[aiohttp.ClientSession]:
    """Raw HTTPS to the API server as its admin (the kubeconfig's CA and client certificate)."""
    config = yaml.safe_load(real_cluster.kubeconfig.read_text())
    context = ssl.create_default_context(
        cafile=config["clusters"][0]["cluster"]["certificate-authority"]
    )
    user = config["users"][0]["user"]
    context.load_cert_chain(user["client-certificate"], user["client-key"])
    async with aiohttp.ClientSession(
        base_url=real_cluster.url, connector=aiohttp.TCPConnector(ssl=context)
    ) as session:
        yield session


@pytest.fixture
async def release_namespace(dynamic: DynamicClient, namespace: str) -> AsyncIterator[str]:
    """The test's own namespace, created for the release and deleted after the test."""
    namespaces = await dynamic.resources.get(api_version="v1", kind="Namespace")
    await dynamic.create(namespaces, body={"metadata": {"name": namespace}})
    try:
        yield namespace
    finally:
        try:
            await dynamic.delete(namespaces, name=namespace)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def release() -> str:
    """A Helm release name of the test's own: it prefixes every object the chart names."""
    return unique_name("rel")
