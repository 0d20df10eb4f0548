"""Start-up time of the test bench's real parts: the Tansu broker and the git server.

The bench starts one of each per test, so their start-up bounds how fast the suite can
be. Prints each part's median start (until it answers) and stop, over N rounds, with the
time to spawn `true` as the process-creation baseline of this machine.

    python bench/bench_startup.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from gitops.broker import EmbeddedBroker
from gitops.gitserver import GitHttpServer


async def spawn_true() -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()
    return time.perf_counter() - started


async def main(rounds: int) -> None:
    baseline, broker_start, broker_stop, git_start = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            baseline.append(await spawn_true())
            started = time.perf_counter()
            broker = EmbeddedBroker()
            await broker.start()
            broker_start.append(time.perf_counter() - started)
            started = time.perf_counter()
            await broker.stop()
            broker_stop.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with GitHttpServer(Path(tmp) / f"git{i}") as server:
                server.create_repo("r")
                git_start.append(time.perf_counter() - started)
    ms = {
        k: statistics.median(v) * 1000
        for k, v in {
            "spawn `true`": baseline,
            "broker start": broker_start,
            "broker stop": broker_stop,
            "git server start + repo": git_start,
        }.items()
    }
    for name, value in ms.items():
        print(f"{name:<24} {value:8.1f} ms  ({value / ms['spawn `true`']:.0f}x spawning `true`)")
    cold, worst = broker_start[0] * 1000, max(broker_start) * 1000
    print(f"first broker start {cold:.0f} ms (cold), max {worst:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
