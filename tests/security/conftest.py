"""Hostile-input bench: a receiver registering `webhooks.REPOS`, in front of the bed's Kafka
(with this test's own topic prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig
from tests.security import webhooks
from tests.support.bed import RealKafka

StartReceiver = Callable[..., Awaitable[Receiver]]


async def wait_ready(running: Receiver, timeout: float = 15.0) -> None:
    """Until the receiver's producer is connected to the (just started) broker."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not running.publisher.ready:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the receiver did not connect to the broker")
        await asyncio.sleep(0.02)


@pytest.fixture
async def start_receiver(kafka: RealKafka) -> AsyncIterator[StartReceiver]:
    """`await start_receiver(rate_limit_per_minute=5)`: receiver settings as keywords."""
    running: list[Receiver] = []

    async def start(**receiver: Any) -> Receiver:
        config = GitopsConfig.model_validate(
            webhooks.config_dict(kafka.bootstrap, kafka.topic_prefix, **receiver)
        )
        await ensure_topics(config.kafka)
        instance = Receiver(config, probe_interval=0.2)
        await instance.start()
        running.append(instance)
        await wait_ready(instance)
        return instance

    yield start
    for instance in running:
        await instance.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# The syncer bench (the bed's cluster behind a fault-injecting proxy, a config builder,
# request/outcome helpers) is the one the syncer's own tests use; importing its fixtures
# keeps one definition of it.
from tests.syncer.conftest import (  # noqa: E402, F401
    bench,
    cluster,
    inventory_namespace,
    k8s,
    kubeconfig,
)
