"""`bench/appsets.py` runs end to end on a few apps against the real test bed: every app of
the set is synced, the push's removals are pruned and its additions synced, the re-run
publishes nothing, and the run's topics are gone afterwards (figures are the script's
business, not asserted)."""

from __future__ import annotations

import re

from testbed.bed import Bed
from tests.bench.test_pipeline_benches import run_bench, topics_with_prefix


def test_the_app_set_bench_adds_and_removes_apps_on_the_bed(bed: Bed) -> None:
    out = run_bench("appsets.py", bed, "--apps", "20", "--changes", "3")
    assert re.search(r"first generation: 20 apps in [\d.]+ s; all 20 synced", out), out
    assert re.search(r"3 removed apps pruned [\d.]+ s after git push", out), out
    assert re.search(r"3 new apps synced\s+[\d.]+ s after git push", out), out
    assert "(3 added, 3 removed, 20 apps)" in out
    assert "20 apps matched, rendered and compared" in out
    assert "failures" not in out
    run = re.search(r"run id ([0-9a-f]+)", out)
    assert run is not None and bed.kafka_bootstrap
    assert topics_with_prefix(bed.kafka_bootstrap, f"appsets-{run[1]}") == []
