"""Load figures for the devcluster emulator: GETs/s and server-side applies/s.

The emulator runs in its own process (``python -m devcluster --port 0``) so the client
does not share a core-bound event loop with it; one client process drives it over HTTP
with aiohttp at a fixed concurrency for a bounded number of requests.

    python bench/devcluster_load.py [--gets 20000] [--applies 5000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

APPLY = "application/apply-patch+yaml"


def deployment(name: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 80}],
                            "env": [{"name": "MODE", "value": "bench"}],
                        }
                    ]
                },
            },
        },
    }


async def start_server() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devcluster",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    if "serving" not in line:
        proc.kill()
        raise RuntimeError(f"devcluster did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1].strip()


async def run_phase(label: str, total: int, concurrency: int, one: Any) -> float:
    counter = iter(range(total))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for n in counter:
            status = await one(n)
            if status >= 300:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    rate = total / elapsed
    print(f"{label:<34} {total:>7} requests in {elapsed:6.2f}s = {rate:8.0f}/s  errors={errors}")
    return rate


async def main(gets: int, applies: int, concurrency: int, objects: int) -> None:
    proc, url = await start_server()
    try:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector) as session:
            bodies = [
                json.dumps(deployment(f"app{n}", "nginx:1.27")).encode() for n in range(objects)
            ]
            updates = [
                json.dumps(deployment(f"app{n}", "nginx:1.28")).encode() for n in range(objects)
            ]
            base = "/apis/apps/v1/namespaces/default/deployments"

            async def apply(n: int, payload: list[bytes]) -> int:
                name = f"app{n % objects}"
                async with session.patch(
                    f"{base}/{name}?fieldManager=bench&force=true",
                    data=payload[n % objects],
                    headers={"Content-Type": APPLY},
                ) as resp:
                    await resp.read()
                    return resp.status

            async def get(n: int) -> int:
                async with session.get(f"{base}/app{n % objects}") as resp:
                    await resp.read()
                    return resp.status

            async def list_all(n: int) -> int:
                async with session.get(f"{base}?limit=50") as resp:
                    await resp.read()
                    return resp.status

            await run_phase("apply (create)", objects, concurrency, lambda n: apply(n, bodies))
            apply_rate = await run_phase(
                "apply (change image, alternating)",
                applies,
                concurrency,
                lambda n: apply(n, updates if (n // objects) % 2 == 0 else bodies),
            )
            last = updates if ((applies - 1) // objects) % 2 == 0 else bodies
            noop_rate = await run_phase(
                "apply (unchanged, no-op)", applies, concurrency, lambda n: apply(n, last)
            )
            get_rate = await run_phase("get deployment", gets, concurrency, get)
            await run_phase(
                "list deployments (limit=50)", max(gets // 10, 1), concurrency, list_all
            )
        print(
            f"\nSUMMARY gets/s={get_rate:.0f} applies/s={apply_rate:.0f} "
            f"no-op-applies/s={noop_rate:.0f} (targets: >=2000 gets/s, >=500 applies/s)"
        )
    finally:
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gets", type=int, default=20_000)
    parser.add_argument("--applies", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--objects", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.gets, args.applies, args.concurrency, args.objects))
