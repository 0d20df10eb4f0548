"""Git fetch figures for the syncer's cache, against the git CLI on the same server.

A repository of `--commits` commits and `--files` manifests is generated with
`git fast-import`, served by `gitops.gitserver.GitHttpServer` (git http-backend) in its
own process on 127.0.0.1, and fetched `--reps` times by each contender:

1. first sync of a new app: `GitCache.resolve` + `read_files` of one app directory into
   an empty cache, against `git clone --bare --depth 1` (and a full `git clone --bare`,
   and dulwich's stock `GitClient.fetch(depth=1)`, for context);
2. incremental fetch of one new commit: `GitCache.resolve` of the branch after one push,
   against `git fetch` of that branch into a clone in the same state;
3. answering an ancestry question that needs the whole history: `GitCache.is_ancestor`
   on a shallow cache, against `git fetch --unshallow`.

Each figure is the median of the repetitions; ratios are ours / git's (lower is better).

    python bench/fetch.py [--commits 2000] [--files 3000] [--reps 7]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dulwich.client import get_transport_and_path  # noqa: E402
from dulwich.repo import Repo  # noqa: E402

from schemas.config import RepositoryConfig  # noqa: E402
from schemas.types import CommitSha  # noqa: E402
from syncer.gitcache import GitCache  # noqa: E402

APPS = 50
DIRS_PER_APP = 10
FILES_PER_COMMIT = 3


def manifest(index: int, version: int) -> bytes:
    padding = "x" * ((index * 37) % 400)
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{index}\n"
        f'data:\n  version: "{version}"\n  payload: {padding}\n'
    ).encode()


def file_path(index: int) -> bytes:
    app, directory = index % APPS, (index // APPS) % DIRS_PER_APP
    return b"apps/app%02d/dir%02d/cm-%04d.yaml" % (app, directory, index)


def fast_import_commit(stream: bytearray, number: int, files: int) -> None:
    """Commit `number`: the first adds every file, later ones change three of them."""
    stream += b"commit refs/heads/main\n"
    stream += b"committer Bench <bench@example.test> %d +0000\n" % (1_700_000_000 + number)
    message = b"commit %d" % number
    stream += b"data %d\n%s\n" % (len(message), message)
    if number == 0:
        indices = list(range(files))
    else:
        indices = [(number * 7 + k * 1013) % files for k in range(FILES_PER_COMMIT)]
    for index in indices:
        data = manifest(index, number)
        stream += b"M 100644 inline %s\ndata %d\n%s\n" % (file_path(index), len(data), data)
    stream += b"\n"


def generate(path: Path, commits: int, files: int) -> None:
    """A bare repository: one commit adding every file, then small commits changing three."""
    subprocess.run(
        ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True
    )
    stream = bytearray()
    for number in range(commits):
        fast_import_commit(stream, number, files)
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"], input=bytes(stream), check=True
    )
    subprocess.run(["git", "-C", str(path), "gc", "--quiet"], check=True)


def push_one_commit(path: Path, number: int, files: int) -> None:
    """Add one commit on top of main, as a developer's push would."""
    stream = bytearray()
    stream += b"commit refs/heads/main\n"
    stream += b"committer Bench <bench@example.test> %d +0000\n" % (1_800_000_000 + number)
    message = b"incremental %d" % number
    stream += b"data %d\n%s\nfrom refs/heads/main^0\n" % (len(message), message)
    for k in range(FILES_PER_COMMIT):
        index = (number * 11 + k * 997) % files
        data = manifest(index, 10_000 + number)
        stream += b"M 100644 inline %s\ndata %d\n%s\n" % (file_path(index), len(data), data)
    stream += b"\n"
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"], input=bytes(stream), check=True
    )


SERVE = """
import asyncio, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from gitops.gitserver import GitHttpServer
async def main():
    async with GitHttpServer(Path({served!r})) as server:
        print(server.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


async def git_output(*args: str) -> str:
    process = await asyncio.create_subprocess_exec("git", *args, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed")
    return out.decode().strip()


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def run_git(*args: str) -> None:
    process = await asyncio.create_subprocess_exec("git", *args)
    if await process.wait() != 0:
        raise RuntimeError(f"git {' '.join(args)} failed")


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def report(label: str, ours: list[float], theirs: list[float], their_label: str) -> None:
    a, b = median_ms(ours), median_ms(theirs)
    print(f"  {label:<34} {a:8.1f} ms   {their_label:<30} {b:8.1f} ms   ratio {a / b:5.2f}x")


async def bench(url: str, served: Path, work: Path, reps: int, files: int) -> None:
    repo = RepositoryConfig(url=url)
    app_path = "apps/app07"

    print(f"1. first sync of a new app (resolve + read_files {app_path}), median of {reps}")
    ours, shallow, full, stock = [], [], [], []
    for rep in range(reps):
        cache_dir = work / f"first-{rep}"

        async def first_sync(cache_dir: Path = cache_dir) -> None:
            async with GitCache(cache_dir) as cache:
                head = await cache.resolve(repo, "main")
                files_read = await cache.read_files(url, head, app_path)
                assert len(files_read) == files // APPS

        ours.append(await timed(first_sync))
        shallow.append(
            await timed(
                lambda rep=rep: run_git(
                    "clone", "--quiet", "--bare", "--depth", "1", url, str(work / f"depth1-{rep}")
                )
            )
        )
        full.append(
            await timed(
                lambda rep=rep: run_git(
                    "clone", "--quiet", "--bare", url, str(work / f"full-{rep}")
                )
            )
        )

        def stock_fetch(rep: int = rep) -> None:
            target = Repo.init_bare(str(work / f"stock-{rep}"), mkdir=True)
            client, path = get_transport_and_path(url)
            client.fetch(
                path,
                target,
                determine_wants=lambda refs, depth=None: [refs[b"refs/heads/main"]],
                depth=1,
            )
            target.close()

        stock.append(await timed(lambda: asyncio.to_thread(stock_fetch)))
    report("GitCache first sync", ours, shallow, "git clone --bare --depth 1")
    report("GitCache first sync", ours, full, "git clone --bare (full)")
    report("dulwich GitClient.fetch depth=1", stock, shallow, "git clone --bare --depth 1")

    print(f"2. incremental fetch of one new commit, median of {reps}")
    cache_dir = work / "incremental"
    clone = work / "incremental-git"
    ours, theirs = [], []
    async with GitCache(cache_dir) as cache:
        await cache.resolve(repo, "main")
        await run_git("clone", "--quiet", "--bare", "--depth", "1", url, str(clone))
        for rep in range(reps):
            await asyncio.to_thread(push_one_commit, served, rep, files)
            expected = await git_output("-C", str(served), "rev-parse", "main")

            async def incremental(expected: str = expected) -> None:
                assert await cache.resolve(repo, "main") == expected

            if rep % 2:
                ours.append(await timed(incremental))
                theirs.append(
                    await timed(
                        lambda: run_git(
                            "-C",
                            str(clone),
                            "fetch",
                            "--quiet",
                            "origin",
                            "+refs/heads/main:refs/heads/main",
                        )
                    )
                )
            else:
                theirs.append(
                    await timed(
                        lambda: run_git(
                            "-C",
                            str(clone),
                            "fetch",
                            "--quiet",
                            "origin",
                            "+refs/heads/main:refs/heads/main",
                        )
                    )
                )
                ours.append(await timed(incremental))
        report("GitCache.resolve (1 new commit)", ours, theirs, "git fetch")

    print(
        f"3. ancestry check that needs the whole history (shallow cache), median of {min(reps, 3)}"
    )
    ours, theirs = [], []
    root = (await git_output("-C", str(served), "rev-list", "--max-parents=0", "main")).split()[0]
    for rep in range(min(reps, 3)):
        async with GitCache(work / f"deep-{rep}") as cache:
            head = await cache.resolve(repo, "main")

            async def ancestry(cache: GitCache = cache, head: CommitSha = head) -> None:
                assert await cache.is_ancestor(url, CommitSha(root), head)

            ours.append(await timed(ancestry))
        target = work / f"deep-git-{rep}"
        await run_git("clone", "--quiet", "--bare", "--depth", "1", url, str(target))
        theirs.append(
            await timed(
                lambda target=target: run_git(
                    "-C",
                    str(target),
                    "fetch",
                    "--quiet",
                    "--unshallow",
                    "origin",
                    "+refs/heads/main:refs/heads/main",
                )
            )
        )
    report("GitCache.is_ancestor (deepens)", ours, theirs, "git fetch --unshallow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if args.reps < 1 or args.commits < 2 or args.files < APPS:
        parser.error("need --reps >= 1, --commits >= 2 and --files >= 50")

    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as scratch:
        base = Path(scratch)
        served_root = base / "served"
        served_root.mkdir()
        started = time.perf_counter()
        generate(served_root / "bench.git", args.commits, args.files)
        size = sum(p.stat().st_size for p in (served_root / "bench.git").rglob("*") if p.is_file())
        print(
            f"repository: {args.commits} commits, {args.files} files, {size / 1e6:.1f} MB packed "
            f"(generated in {time.perf_counter() - started:.1f} s)"
        )
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE.format(root=str(ROOT), served=str(served_root))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            base_url = server.stdout.readline().strip()
            if not base_url:
                raise RuntimeError("the git server did not start")
            work = base / "work"
            work.mkdir()
            asyncio.run(
                bench(
                    f"{base_url}/bench.git", served_root / "bench.git", work, args.reps, args.files
                )
            )
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(base / "work", ignore_errors=True)


if __name__ == "__main__":
    main()
