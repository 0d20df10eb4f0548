"""What operators see: health, readiness, metrics, JSON logs without secrets, clean shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from gitops.broker import EmbeddedBroker, free_port
from gitops.logs import JsonFormatter
from receiver.service import Receiver
from schemas import GitopsConfig
from tests.receiver import hosts
from tests.receiver.conftest import GITLAB_SIGNING_TOKEN, Post, config_text, wait_ready
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_health_and_readiness_answer_200_while_the_broker_is_connected(
    receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{receiver.url}/healthz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ok"})
    async with http.get(f"{receiver.url}/readyz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ready"})


async def test_metrics_count_requests_by_provider_and_outcome(
    receiver: Receiver, post: Post, http: aiohttp.ClientSession
) -> None:
    body = hosts.sample("github/push-branch-update.json")
    await post("github", body, hosts.github(body, "hello-new"))
    await post("github", body, hosts.github(body, "wrong"))
    await post("gitlab", body, hosts.gitlab(body, "wrong"))

    async with http.get(f"{receiver.url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    assert 'gitops_receiver_requests_total{outcome="accepted",provider="github"} 1.0' in text
    assert 'gitops_receiver_requests_total{outcome="unauthorized",provider="github"} 1.0' in text
    assert 'gitops_receiver_signature_failures_total{provider="gitlab"} 1.0' in text
    assert "gitops_receiver_publish_seconds_count 1.0" in text


async def test_logs_are_json_with_the_delivery_id_and_never_contain_a_secret(
    post: Post, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = hosts.sample("gitlab/push.json")
    answers = [
        await post("gitlab", body, hosts.gitlab(body, "diaspora-token", delivery="log-1")),
        await post("gitlab", body, hosts.gitlab(body, "diaspora-tokem", delivery="log-2")),
        await post("gitlab", b"{", hosts.gitlab(b"{", "diaspora-token", delivery="log-3")),
    ]

    formatter = JsonFormatter(component="receiver")
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    answered = {line["delivery"]: line["status"] for line in lines if "status" in line}
    assert answered == {"log-1": 202, "log-2": 401, "log-3": 400}
    everything = json.dumps(lines) + json.dumps([answer for _, answer, _ in answers])
    for secret in ("diaspora-token", "diaspora-tokem", GITLAB_SIGNING_TOKEN, "hello-new"):
        assert secret not in everything


async def test_shutdown_finishes_an_in_flight_publish_before_closing(
    tansu_config: GitopsConfig, tansu: EmbeddedBroker, http: aiohttp.ClientSession
) -> None:
    """On a Tansu of the test's own: pausing the shared Kafka would stall every other test."""
    body = hosts.sample("github/push-branch-update.json")
    headers = hosts.github(body, "hello-new", delivery="in-flight")
    receiver = Receiver(tansu_config, probe_interval=0.2)
    await receiver.start()
    await wait_ready(receiver)

    async def deliver() -> int:
        async with http.post(f"{receiver.url}/hooks/github", data=body, headers=headers) as r:
            return r.status

    tansu.pause()
    try:
        request = asyncio.create_task(deliver())
        await asyncio.sleep(0.5)
        closing = asyncio.create_task(receiver.close())
        await asyncio.sleep(0.3)
    finally:
        tansu.resume()
    assert await request == 202
    await closing
    await receiver.close()  # closing twice is harmless
    assert len(await read_topic(tansu.bootstrap, "gitops.push-events", expect=1)) == 1


async def test_gitops_receiver_command_serves_and_exits_0_on_sigterm(
    kafka: RealKafka, config: GitopsConfig, tmp_path: Path
) -> None:
    config_file = tmp_path / "gitops.yaml"
    config_file.write_text(config_text(kafka.bootstrap, kafka.topic_prefix))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gitops", "receiver", "--config", str(config_file),
        "--host", "127.0.0.1", "--port", str(port),
        cwd=REPO_ROOT, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        body = hosts.sample("bitbucket-cloud/repo-push-branch-update.json")
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            url = f"http://127.0.0.1:{port}/hooks/bitbucket"
            async with http.post(url, data=body, headers=hosts.bitbucket(body, "foo-secret")) as r:
                assert r.status == 202
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    messages = [json.loads(line)["message"] for line in stderr.decode().splitlines()]
    assert messages[-1] == "receiver stopped"
