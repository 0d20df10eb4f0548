"""A broker that does not answer: the services retry it for `kafka.startup_timeout`
(logging each retry), then log one error line and exit 3; one-shot commands exit 3 at
once. The broker is a closed port on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.startup.conftest import closed_port, gitops

SERVICES = {
    "syncer": ["syncer", "--no-http"],
    "receiver": ["receiver", "--host", "127.0.0.1", "--port", "0"],
    "notifier": ["notifier", "--no-http"],
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_waits_startup_timeout_for_the_broker_then_exits_3(
    service: str, write_config: Callable[..., Path]
) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    config = write_config(bootstrap=bootstrap)
    started = time.monotonic()

    run = gitops(*SERVICES[service], "--config", str(config))

    took = time.monotonic() - started
    assert run.code == 3, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.json_lines()
    retries = [line for line in lines if line["logger"] == "gitops.topics"]
    assert retries, run.stderr
    assert all("(kafka.startup_timeout)" in str(line["message"]) for line in retries)
    errors = [line for line in lines if line["logger"] == "gitops"]
    assert lines[-1] in errors
    assert [line["message"] for line in errors] == [
        f"cannot start: {config}: Kafka at {bootstrap} unreachable after 2 s (no broker"
        " answered); check kafka.bootstrap (env GITOPS_KAFKA_BOOTSTRAP overrides it) and"
        " that the broker is up"
    ]
    assert errors[0]["component"] == service
    assert errors[0]["exit_code"] == 3
    assert 2 <= took < 30


@pytest.mark.parametrize(
    "command",
    [["sync", "web"], ["suspend", "web", "--no-wait"], ["resume", "web"], ["apps"]],
    ids=lambda c: c[0],
)
def test_a_one_shot_command_says_the_broker_is_unreachable_and_exits_3(
    command: list[str], write_config: Callable[..., Path]
) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    config = write_config(bootstrap=bootstrap)

    run = gitops(*command, "--config", str(config))

    assert run.code == 3, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.strip() == (
        f"gitops {command[0]}: {config}: Kafka at {bootstrap} unreachable (no broker answered);"
        " check kafka.bootstrap (env GITOPS_KAFKA_BOOTSTRAP overrides it) and that the broker"
        " is up"
    )
