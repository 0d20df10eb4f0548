"""`bench/ssh_fetch.py` runs end to end on a tiny repository over a real sshd (its figures
are the script's business, not asserted): both contenders fetch and both ratios print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_ssh_fetch_bench_measures_both_contenders() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "ssh_fetch.py"),
            "--commits",
            "20",
            "--files",
            "100",
            "--reps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    ratios = [line for line in done.stdout.splitlines() if "ratio" in line]
    assert len(ratios) == 2, done.stdout
    assert "git clone --bare --depth 1" in ratios[0] and "git fetch" in ratios[1]
