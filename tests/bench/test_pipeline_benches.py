"""`bench/e2e_latency.py` and `bench/receiver_load.py` run end to end on a few requests
against the real test bed: every push is applied, every 202 is on the topics exactly once,
and the run's topics are gone afterwards and its Namespaces going (figures are the scripts'
business, not asserted)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from testbed.bed import Bed

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, bed: Bed, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--testbed", str(bed.folder), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


def topics_with_prefix(bootstrap: str, prefix: str) -> list[str]:
    async def listed() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return [t for t in await admin.list_topics() if t.startswith(prefix + ".")]
        finally:
            await admin.close()

    return asyncio.run(listed())


def test_e2e_latency_applies_every_push_through_the_pipeline_on_the_bed(bed: Bed) -> None:
    out = run_bench("e2e_latency.py", bed, "--pushes", "3", "--objects", "4")
    assert "pushes: 3 of a 4-object app" in out
    assert re.search(r"push -> applied(\s+\d+){4}", out), out
    assert re.search(r"`git push` alone \(floor\)(\s+\d+){4}", out), out
    assert "SUMMARY push -> applied p50" in out
    run = re.search(r"run id ([0-9a-f]+)", out)
    assert run is not None and bed.kafka_bootstrap and bed.kubeconfig
    assert topics_with_prefix(bed.kafka_bootstrap, f"e2e-{run[1]}") == []
    listed = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubectl"),
            "get",
            "namespaces",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{'\\n'}{end}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(bed.kubeconfig)},
        check=True,
    )
    left = dict(line.split() for line in listed.stdout.splitlines() if line.strip())
    for name in (f"e2e-bench-{run[1]}", f"e2e-bench-{run[1]}-inventory"):
        assert left.get(name, "Terminating") == "Terminating", left.get(name)


def test_receiver_load_publishes_every_accepted_push_once_on_the_bed(bed: Bed) -> None:
    out = run_bench(
        "receiver_load.py", bed,
        "--requests", "100", "--concurrency", "8", "--rate", "50", "--seconds", "0.5",
        "--rounds", "1",
    )  # fmt: skip
    assert "each 202'd delivery exactly once: True" in out, out
    assert re.search(r"max throughput, floor .* req/s", out), out
    assert re.search(r"fixed rate 50 req/s, receiver .* req/s", out), out
    assert "SUMMARY receiver" in out
    run = re.search(r"run id ([0-9a-f]+)", out)
    assert run is not None and bed.kafka_bootstrap
    assert topics_with_prefix(bed.kafka_bootstrap, f"rl-{run[1]}") == []
