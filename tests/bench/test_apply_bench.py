"""`bench/apply.py` runs end to end on small apps against the real test bed: every side
applies every object, the resyncs find nothing to change, and the Namespaces it made are
gone afterwards (figures are the script's business, not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from testbed.bed import Bed

ROOT = Path(__file__).resolve().parents[2]


def test_apply_bench_syncs_small_apps_on_the_bed_with_the_syncer_and_kubectl(bed: Bed) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "apply.py"),
            "--testbed",
            str(bed.folder),
            "--objects",
            "8",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    for app in ("configmaps", "mixed"):
        assert f"app {app}: 9 objects per side (namespace included)" in done.stdout
        assert f"SUMMARY {app}: first sync" in done.stdout
    assert re.search(r"first sync \(s\)(\s+\d+\.\d+){2,}", done.stdout)
    assert re.search(r"no-change resync \(s\)(\s+\d+\.\d+){2,}", done.stdout)
    run = re.search(r"run id ([0-9a-f]+)", done.stdout)
    assert run is not None
    assert bed.kubeconfig is not None
    left = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubectl"),
            "get",
            "namespaces",
            "-l",
            f"gitops.dev/bench=apply-{run[1]}",
            "-o",
            "yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(bed.kubeconfig)},
        check=True,
    )
    assert yaml.safe_load(left.stdout)["items"] == []
