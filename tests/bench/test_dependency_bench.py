"""`bench/dependency_wakeup.py` runs end to end on a few rounds against the real test bed:
each round's waiting app is started by its dependency's success, and the run's topics are
gone afterwards (figures are the script's business, not asserted)."""

from __future__ import annotations

import re

from testbed.bed import Bed
from tests.bench.test_pipeline_benches import run_bench, topics_with_prefix


def test_dependency_wakeup_measures_every_round_on_the_bed(bed: Bed) -> None:
    out = run_bench("dependency_wakeup.py", bed, "--rounds", "2")
    assert re.search(r"^rounds: 2 in ", out, re.M), out
    assert re.search(r"^wake-up .*: median \d+ ms, p95 \d+ ms", out, re.M), out
    prefix = re.search(r"run topics (\S+)\.\*", out)
    assert prefix is not None and bed.kafka_bootstrap
    assert topics_with_prefix(bed.kafka_bootstrap, prefix[1]) == []
