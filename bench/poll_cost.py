"""Cost of the branch-head poll: CPU seconds and git server requests per round.

1,000 apps over 50 repositories (interval 60 s), polled by one syncer, then by two
syncers that split the 12 partitions of `sync-requests` between them (each drives its
own `Poller` with a fixed `Ownership`, as a consumer group would assign it). Heads are
polled per repository by the owner of the repository's partition, so the total git
traffic and CPU must not grow with the number of syncers.

Everything real except the clock: the git server (`git http-backend`) and the Kubernetes
API emulator (holding the 1,000 inventories) run in their own processes, so the CPU
figure (this process: scheduler, dulwich ls-remote threads, inventory reads, Kafka
producer) is only the pollers'. The clock is advanced by 70 s per round, so every check
is due each round without waiting. 2% of the apps are one commit behind their branch
head, so round 1 also publishes requests (round 2 must not publish them again).

    python bench/poll_cost.py [--apps 1000] [--repos 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from gitops.broker import EmbeddedBroker, free_port
from gitops.topics import ensure_topics
from schemas import GitopsConfig
from schemas.types import CommitSha
from syncer.gitcache import GitCache
from syncer.inventory import Inventory, InventoryStore
from syncer.kube import Cluster
from syncer.ownership import Ownership
from syncer.polling import InventoryCommits, Poller

PARTITIONS = 12
ROUND_STEP = 70.0  # > interval x 1.1: every check is due every round


def serve_git(root: str, port: int) -> None:
    """Child mode: serve `root` and answer each stdin line with the request count."""
    from gitops.gitserver import GitHttpServer

    async def main() -> None:
        async with GitHttpServer(Path(root), port=port) as server:
            print("ready", flush=True)
            loop = asyncio.get_running_loop()
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                del line
                print(server.requests, flush=True)

    asyncio.run(main())


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


def make_repos(root: Path, work: Path, count: int) -> tuple[str, str]:
    """`count` bare repositories whose main is at commit B, with A its parent."""
    work.mkdir(parents=True)
    root.mkdir(parents=True)
    git("init", "-q", "--initial-branch=main", cwd=work)
    (work / "a.yaml").write_text("a: 1\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "a", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    (work / "a.yaml").write_text("a: 2\n")
    git("commit", "-qam", "b", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    for i in range(count):
        bare = root / f"repo-{i:02d}.git"
        git("init", "-q", "--bare", "--initial-branch=main", str(bare), cwd=root)
        git("push", "-q", str(bare), "HEAD:refs/heads/main", cwd=work)
    return first, head


async def child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def git_requests(server: asyncio.subprocess.Process) -> int:
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(b"?\n")
    await server.stdin.drain()
    return int(await server.stdout.readline())


def build_config(
    args: argparse.Namespace, git_url: str, kubeconfig: Path, bootstrap: str
) -> GitopsConfig:
    return GitopsConfig.model_validate(
        {
            "kafka": {
                "bootstrap": bootstrap,
                "topic_prefix": "bench",
                "partitions": PARTITIONS,
                "idempotence": False,
            },
            "clusters": {"bench": {"kubeconfig": str(kubeconfig)}},
            "repositories": {
                f"repo-{r:02d}": {"url": f"{git_url}/repo-{r:02d}.git"} for r in range(args.repos)
            },
            "apps": {
                f"app-{i:04d}": {
                    "repo": f"repo-{i % args.repos:02d}",
                    "path": ".",
                    "cluster": "bench",
                    "interval": "60s",
                }
                for i in range(args.apps)
            },
        }
    )


async def measure(
    label: str,
    splits: list[set[int]],
    config: GitopsConfig,
    cluster: Cluster,
    server: asyncio.subprocess.Process,
    tmp: Path,
    rounds: int,
) -> list[tuple[float, int, int]]:
    """Per round: CPU seconds, git requests and poll requests, summed over the syncers."""
    producer = AIOKafkaProducer(**config.kafka.producer_options())
    await producer.start()
    now = [0.0]
    pollers: list[Poller] = []
    caches: list[GitCache] = []
    try:
        for index, partitions in enumerate(splits):
            ownership = Ownership("bench.sync-requests")
            ownership.assigned(partitions, PARTITIONS)
            cache = GitCache(tmp / f"cache-{label}-{index}")
            caches.append(cache)
            pollers.append(
                Poller(
                    config=config,
                    ownership=ownership,
                    heads=cache,
                    applied=InventoryCommits(config, {"bench": cluster}),
                    producer=producer,
                    clock=lambda: now[0],
                )
            )
        figures = []
        for _ in range(rounds):
            now[0] += ROUND_STEP
            before_requests = await git_requests(server)
            before_published = sum(p.stats.poll_requests for p in pollers)
            cpu = 0.0
            for poller in pollers:  # one after the other: each one's CPU alone
                started = time.process_time()
                await poller.run_due()
                cpu += time.process_time() - started
            requests = await git_requests(server) - before_requests
            published = sum(p.stats.poll_requests for p in pollers) - before_published
            figures.append((cpu, requests, published))
        return figures
    finally:
        for cache in caches:
            await cache.close()
        await producer.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="poll-cost-") as tmp_name:
        tmp = Path(tmp_name)
        first, head = make_repos(tmp / "git", tmp / "work", args.repos)
        git_port, kube_port = free_port(), free_port()
        server = await child(
            sys.executable, __file__, "--serve-git", str(tmp / "git"), str(git_port)
        )
        kubeconfig = tmp / "kubeconfig"
        kube = await child(
            sys.executable, "-m", "gitops", "devcluster", "--port", str(kube_port),
            "--kubeconfig", str(kubeconfig),
        )  # fmt: skip
        try:
            assert server.stdout is not None and kube.stdout is not None
            assert (await server.stdout.readline()).strip() == b"ready"
            await kube.stdout.readline()
            async with EmbeddedBroker(log_path=tmp / "tansu.log") as broker:
                config = build_config(
                    args, f"http://127.0.0.1:{git_port}", kubeconfig, broker.bootstrap
                )
                await ensure_topics(config.kafka)
                async with await Cluster.connect("bench", config.clusters["bench"]) as cluster:
                    store = InventoryStore(cluster, config.syncer.inventory_namespace)
                    behind = {name for i, name in enumerate(config.apps) if i % 50 == 0}
                    for name in config.apps:
                        commit = first if name in behind else head
                        await store.save(name, Inventory(CommitSha(commit), {}))
                    one = await measure(
                        "one", [set(range(PARTITIONS))], config, cluster, server, tmp, args.rounds
                    )
                    halves = [set(range(0, PARTITIONS, 2)), set(range(1, PARTITIONS, 2))]
                    two = await measure("two", halves, config, cluster, server, tmp, args.rounds)
        finally:
            for process in (server, kube):
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
    print(
        f"poll cost: {args.apps} apps over {args.repos} repositories, interval 60s, "
        f"{len(behind)} apps behind their branch head"
    )
    head_row = ("round", "1 syncer: cpu s", "git req", "requested")
    print(f"{head_row[0]:>5}  {head_row[1]:>16} {head_row[2]:>8} {head_row[3]:>9}   ", end="")
    print(f"{'2 syncers: cpu s':>17} {head_row[2]:>8} {head_row[3]:>9}")
    for n, (a, b) in enumerate(zip(one, two, strict=True), start=1):
        print(f"{n:>5}  {a[0]:>16.3f} {a[1]:>8} {a[2]:>9}   {b[0]:>17.3f} {b[1]:>8} {b[2]:>9}")
    steady_one = sum(r[0] for r in one[1:]) / max(1, len(one) - 1)
    steady_two = sum(r[0] for r in two[1:]) / max(1, len(two) - 1)
    print(
        f"steady rounds: CPU per round 1 syncer {steady_one:.3f}s, 2 syncers {steady_two:.3f}s "
        f"(ratio {steady_two / steady_one:.2f})"
    )
    print(
        f"git requests per round: 1 syncer {one[-1][1]}, 2 syncers {two[-1][1]} "
        f"(ratio {two[-1][1] / max(1, one[-1][1]):.2f}; dulwich lists refs in 2 requests)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-git":
        serve_git(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
