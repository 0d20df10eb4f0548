"""`bench/notify_latency.py` runs end to end on a few outcomes against the real test bed:
every outcome reaches every provider it should, and the run's topics are gone afterwards
(figures are the script's business, not asserted)."""

from __future__ import annotations

import re

from testbed.bed import Bed
from tests.bench.test_pipeline_benches import run_bench, topics_with_prefix


def test_notify_latency_delivers_every_outcome_on_the_bed(bed: Bed) -> None:
    out = run_bench("notify_latency.py", bed, "--events", "12", "--rate", "10")
    for name, count in (("floor", 12), ("github", 12), ("slack", 3), ("webhook", 12)):
        assert re.search(rf"^{name}\s+n={count}\s+p50", out, re.M), out
    prefix = re.search(r"run topics (\S+)\.\*", out)
    assert prefix is not None and bed.kafka_bootstrap
    assert topics_with_prefix(bed.kafka_bootstrap, prefix[1]) == []
