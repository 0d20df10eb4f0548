"""`bench/decrypt.py` runs end to end on a small app (its figures are in docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.sops import sops_binary  # noqa: F401 - builds sops before the run

BENCH = Path(__file__).resolve().parents[2] / "bench" / "decrypt.py"


def test_decrypt_bench_prints_cold_warm_and_check_figures(sops_binary: Path) -> None:  # noqa: F811
    done = subprocess.run(
        [sys.executable, str(BENCH), "--secrets", "2", "--plain", "10", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "2 encrypted + 10 plain files, median of 1 rounds" in done.stdout
    assert re.search(r"cold render: +[\d.]+ ms +\([\d.]+x sops by hand: [\d.]+ ms\)", done.stdout)
    assert re.search(r"warm render \(cache\): [\d.]+ ms", done.stdout)
