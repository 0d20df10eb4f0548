"""The bed's processes: started detached so they outlive `up`, stopped exactly by `down`.

A process is recorded with its start time from `/proc`, so `down` never signals an
unrelated process that reused a recorded pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Running:
    """One started process, as `state.json` records it."""

    name: str
    pid: int
    started: int
    """Start time in clock ticks since boot (`/proc/PID/stat` field 22)."""
    argv: list[str]
    log: str
    port: int | None = None
    version: str | None = None
    handle: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)
    """The child, when this process started it (kept so it is reaped, not warned about)."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "handle"}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Running:
        return cls(**raw)

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started


_REAP_WAIT = 5.0
"""Seconds a stopped child is given to become collectable."""


def free_port() -> int:
    """A port the kernel just had free on 127.0.0.1 (the part binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    name: str,
    argv: list[str],
    log: Path,
    *,
    port: int | None = None,
    version: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Running:
    """Start `argv` in its own session with output to `log`; it survives our exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
    started = _start_time(process.pid)
    if started is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_REAP_WAIT)  # collected, not warned about when dropped
        raise RuntimeError(f"{name} exited at once; see {log}")
    return Running(name, process.pid, started, argv, str(log), port, version, process)


def stop(running: Running, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; False when it was no longer running."""
    if not running.alive():
        _reap(running, wait=_REAP_WAIT)  # it may have exited on its own: collect it
        return False
    _signal(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running.alive():
            _reap(running, wait=_REAP_WAIT)
            return True
        _reap(running)
        time.sleep(0.05)
    _signal(running.pid, signal.SIGKILL)
    while running.alive() and time.monotonic() < deadline + 5:
        _reap(running)
        time.sleep(0.05)
    _reap(running, wait=_REAP_WAIT)
    return True


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)  # the part and anything it started, e.g. a JVM's children
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _reap(running: Running, *, wait: float = 0.0) -> None:
    """Collect a child of ours that exited (only when `up` and `down` share a process).

    `wait` gives it that long to be collectable: a multi-threaded part's main thread shows
    as a zombie in /proc (so `alive()` is False) while its other threads still exit, and
    until they have, the child cannot be collected.
    """
    if running.handle is not None:
        if wait > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.handle.wait(timeout=wait)
        else:
            running.handle.poll()
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(running.pid, os.WNOHANG)


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # exited, not yet reaped
        return None
    return int(fields[19])
