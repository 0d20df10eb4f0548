"""`bench/apply.py` runs end to end on a small app: both sides apply every object, and
the resync finds nothing to change (figures are the script's business, not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_apply_bench_applies_a_small_app_with_the_syncer_and_kubectl() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "apply.py"), "--objects", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "objects: 21 (20 + namespace)" in done.stdout
    assert re.search(r"first sync \(s\)\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\dx", done.stdout)
    assert re.search(r"no-change resync \(s\)\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\dx", done.stdout)
    assert "SUMMARY first-sync" in done.stdout
    assert "Traceback" not in done.stderr
