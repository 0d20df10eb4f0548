"""Reading the event trail and running the CLI, for the lifecycle tests."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import yaml

from schemas import GitopsConfig
from schemas.events import AnyEvent, AppStatus, SyncRequested, parse_event
from tests.support.kafka import read_topic
from tests.syncer.conftest import Bench, Outcome

ROOT = Path(__file__).resolve().parents[2]


async def trail(b: Bench, topic: str) -> list[AnyEvent]:
    """Every event of `topic`, oldest first."""
    records = await read_topic(b.bootstrap, topic, timeout=10, idle=0.3)
    return sorted((parse_event(r.value) for r in records), key=lambda e: e.time)


async def answer(b: Bench, request: SyncRequested | str, timeout: float = 60.0) -> Outcome:
    """The outcome of one request (by the request or its id), waiting for it."""
    wanted = request if isinstance(request, str) else request.id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in await trail(b, b.topics.sync_events):
            data = getattr(event, "data", None)
            if getattr(data, "request_id", None) == wanted:
                return event  # type: ignore[return-value]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no outcome for request {wanted} within {timeout}s")


async def statuses(b: Bench) -> dict[str, AppStatus]:
    """The latest app status of each app, as every syncer reads it."""
    latest: dict[str, AppStatus] = {}
    for event in await trail(b, b.topics.app_status):
        if isinstance(event, AppStatus):
            latest[event.data.app] = event
    return latest


def write_config(config: GitopsConfig, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return path


async def gitops(*args: str, timeout: float = 120.0) -> tuple[int, str, str]:
    """Run `python -m gitops ...` as a user would; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
