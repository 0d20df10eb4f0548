"""The health wait reads a workload's status often at first and every 2 s after that."""

from __future__ import annotations

import itertools

from tests.engine.conftest import EngineBench
from tests.engine.manifests import deployment, namespace


async def test_a_rollout_that_takes_long_is_read_every_few_seconds_not_five_times_a_second(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    files = {"ns.yaml": namespace(b.ns), "stuck.yaml": deployment("stuck", schedulable=False)}
    result = await b.sync(files, health_timeout=7)

    assert result.health == "progressing", result
    reads = [
        s
        for s in b.proxy.seen
        if s.verb == "get" and s.resource == "deployments" and s.name == "stuck"
    ]
    # 0, 0.2, 0.6, 1.4, 3.0, 5.0 and 7.0 s after the apply; a fixed 0.2 s read 36 times.
    assert 5 <= len(reads) <= 9, [round(r.at - reads[0].at, 2) for r in reads]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(reads)]
    assert gaps[0] < 1.0, gaps
    assert max(gaps) < 3.0, gaps
