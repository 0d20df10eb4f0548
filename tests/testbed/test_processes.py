"""A bed process that `up` started in this process is reaped however it ends."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from testbed.processes import start, stop


def test_a_process_that_exited_on_its_own_is_reaped_by_stop(tmp_path: Path) -> None:
    running = start("quick", [sys.executable, "-c", "pass"], tmp_path / "quick.log")
    deadline = time.monotonic() + 10
    while running.alive() and time.monotonic() < deadline:
        time.sleep(0.02)

    assert stop(running) is False
    assert running.handle is not None
    assert running.handle.returncode == 0


def test_a_running_process_is_stopped_and_reaped(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    running = start("sleeper", argv, tmp_path / "sleeper.log")

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        assert stop(running, timeout=5) is True
    assert running.handle is not None
    assert running.handle.returncode is not None
    assert not running.alive()
