"""A broker that refuses idempotent producers stops `gitops receiver`, `gitops syncer`
and `gitops sync` with one line that says to set `kafka.idempotence: false`, exit 2, no traceback.

Tansu is such a broker: it answers InitProducerId with an error, so the configurations
here leave `kafka.idempotence` at its default, `true`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiokafka.errors import KafkaConnectionError

from gitops.broker import EmbeddedBroker
from members.kafka import start_producer
from receiver.service import Receiver
from schemas import IdempotenceRefused, KafkaSettings, parse_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
kafka: {{bootstrap: "{bootstrap}", partitions: 2}}
clusters: {{prod: {{kubeconfig: "{kubeconfig}"}}}}
repositories: {{platform: {{url: "https://git.example/acme/platform.git"}}}}
apps:
  web: {{repo: platform, path: apps/web, cluster: prod}}
"""
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: prod, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: admin, user: {token: unused}}]
contexts: [{name: prod, context: {cluster: prod, user: admin}}]
current-context: prod
"""


@pytest.fixture
async def refusing_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A fresh Tansu, which refuses idempotent producers (real Apache Kafka does not)."""
    async with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        yield broker


def write_config(bootstrap: str, tmp_path: Path) -> Path:
    """A configuration that leaves idempotence on; its cluster is never contacted."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    path = tmp_path / "gitops.yaml"
    path.write_text(CONFIG.format(bootstrap=bootstrap, kubeconfig=kubeconfig))
    return path


async def gitops(*args: str) -> tuple[int, str]:
    """Run `gitops ARGS`; its exit code and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_KAFKA_BOOTSTRAP",)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_receiver_exits_2_saying_to_turn_off_kafka_idempotence(
    refusing_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = write_config(refusing_broker.bootstrap, tmp_path)
    code, stderr = await gitops(
        "receiver", "--config", str(config), "--host", "127.0.0.1", "--port", "0"
    )
    assert code == 2, stderr
    assert f"gitops: {config}: kafka.idempotence:" in stderr
    assert "set 'kafka.idempotence: false'" in stderr
    assert "Traceback" not in stderr


async def test_syncer_exits_2_saying_to_turn_off_kafka_idempotence(
    refusing_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = write_config(refusing_broker.bootstrap, tmp_path)
    code, stderr = await gitops("syncer", "--config", str(config), "--no-http")
    assert code == 2, stderr
    assert f"gitops: {config}: kafka.idempotence:" in stderr
    assert "set 'kafka.idempotence: false'" in stderr
    assert "Traceback" not in stderr


async def test_gitops_sync_exits_2_saying_to_turn_off_kafka_idempotence(
    refusing_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = write_config(refusing_broker.bootstrap, tmp_path)
    code, stderr = await gitops("sync", "web", "--config", str(config))
    assert code == 2, stderr
    assert f"gitops: {config}: kafka.idempotence:" in stderr
    assert "Traceback" not in stderr


async def test_receiver_is_not_ready_when_the_broker_refuses_idempotence(
    refusing_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = parse_config(write_config(refusing_broker.bootstrap, tmp_path).read_text())
    async with Receiver(config, probe_interval=0.2) as receiver, aiohttp.ClientSession() as http:
        with pytest.raises(IdempotenceRefused):
            await asyncio.wait_for(receiver.publisher.wait(), 30)
        async with http.get(f"{receiver.url}/readyz") as response:
            assert response.status == 503


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_receiver_keeps_waiting_for_a_broker_that_is_down(tmp_path: Path) -> None:
    config = parse_config(write_config(f"127.0.0.1:{closed_port()}", tmp_path).read_text())
    async with Receiver(config, probe_interval=0.2) as receiver:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receiver.publisher.wait(), 1.5)
        assert not receiver.publisher.ready


async def test_syncer_does_not_blame_idempotence_for_a_broker_that_is_down() -> None:
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}", idempotence=True)
    with pytest.raises(KafkaConnectionError):
        await start_producer(settings)
