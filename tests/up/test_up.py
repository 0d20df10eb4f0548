"""`gitops up`: a newcomer's first command brings the stack up, syncs a push, and cleans up."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Every descendant of `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and " Z " not in stat.read_text()


class Stream:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def until(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), left)
            except TimeoutError:
                break
            if not raw:
                break
            line = raw.decode().rstrip()
            self.lines.append(line)
            if match := regex.search(line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines[-40:]))


async def interrupt(process: asyncio.subprocess.Process) -> None:
    """Ctrl-C, as a user stops `gitops up`; its whole session is killed if it hangs."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)


def _read_sync_events(bootstrap: str, want: int, until: bytes | None = None) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"independent-{os.getpid()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["gitops.sync-events"])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if len(values) >= want and (until is None or any(until in v for v in values)):
                break
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


async def test_up_syncs_a_pushed_change_live_and_leaves_nothing_behind() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("GITOPS_KAFKA_BOOTSTRAP", "GITOPS_CONFIG")
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        "up",
        "--syncers",
        "2",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    stream = Stream(process)
    try:
        command = (await stream.until(r"^\s+(\S+ -m gitops\.demo push --state \S+)$", 90)).group(1)
        bootstrap = (await stream.until(r"^kafka bootstrap\s+(\S+)$", 1)).group(1)
        workdir = Path((await stream.until(r"^logs\s+(\S+)$", 1)).group(1)).parent
        await stream.until(r"guestbook\s+\w{7}\s+succeeded", 60)
        descendants = _children(process.pid)
        assert len(descendants) >= 4, "broker, emulator, receiver and syncers run as processes"

        push = await asyncio.create_subprocess_exec(
            *shlex.split(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await push.communicate()
        assert push.returncode == 0, out.decode()
        sha = re.search(r"pushed (\w{7})", out.decode())
        assert sha is not None, out.decode()
        pushed_at = time.monotonic()
        await stream.until(rf"guestbook\s+{sha.group(1)}\s+succeeded.*configured 1", 10)
        assert time.monotonic() - pushed_at < 2.0, "the pushed change should be live within 2 s"
        # The local notifier's webhook rule posts each outcome to the printing endpoint.
        await stream.until(
            rf"notification\s+gitops\.sync\.succeeded for guestbook at {sha.group(1)}"
            r"\s+\(rule local, signature ok\)",
            20,
        )

        # Other apps' outcomes (the app set's services) share the topic: read up to the push's.
        events = await asyncio.to_thread(_read_sync_events, bootstrap, 3, sha.group(1).encode())
        assert any(b'"gitops.sync.succeeded"' in e and sha.group(1).encode() in e for e in events)
    finally:
        await interrupt(process)
    survivors = [pid for pid in descendants if _alive(pid)]
    assert survivors == [], f"processes left running after Ctrl-C: {survivors}"
    assert not workdir.exists(), "the temporary directory was left behind"
    assert process.returncode == 0
