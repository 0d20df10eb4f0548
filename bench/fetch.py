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

Each `GitCache` figure is also taken with `LibraryCache`: the same cache, but each fetch
goes through dulwich's `GitClient.fetch` into the mirror (dulwich spools, indexes and
checks the pack itself), so the table shows what the cache's own pack handling
(`syncer/gitpack.py`) is worth against the library, in the same run.

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dulwich.client import get_transport_and_path  # noqa: E402
from dulwich.objects import ObjectID  # noqa: E402
from dulwich.refs import Ref  # noqa: E402
from dulwich.repo import Repo  # noqa: E402

from schemas.config import RepositoryConfig  # noqa: E402
from schemas.types import CommitSha  # noqa: E402
from syncer.gitcache import GitCache  # noqa: E402
from syncer.gitmirror import Mirror  # noqa: E402

if TYPE_CHECKING:
    from dulwich.client import DetermineWantsFunc

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


class LibraryMirror(Mirror):
    """The cache's mirror, fetching through dulwich's `GitClient.fetch` instead."""

    def _fetch(
        self,
        determine_wants: DetermineWantsFunc,
        *,
        depth: int | None,
        ref_prefix: Sequence[Ref],
        skip_present: bool = False,
    ) -> dict[Ref, ObjectID]:
        client, path = self._transport()
        with self._open() as repo:
            store = repo.object_store

            def wanted(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
                picked = determine_wants(refs, depth)
                return [sha for sha in picked if sha not in store] if skip_present else picked

            with self._explained(client):
                result = client.fetch(path, repo, wanted, depth=depth, ref_prefix=list(ref_prefix))
            return {name: sha for name, sha in result.refs.items() if sha is not None}


class LibraryCache(GitCache):
    """`GitCache` whose mirrors are `LibraryMirror`s."""

    def _mirror_for_url(self, url: str) -> Mirror:
        mirror = super()._mirror_for_url(url)
        if not isinstance(mirror, LibraryMirror):
            mirror = LibraryMirror(mirror.path, url, access=mirror.access, timeout=self.timeout)
            self._mirrors = {k: (mirror if v.url == url else v) for k, v in self._mirrors.items()}
        return mirror


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
    print(f"  {label:<36} {a:8.1f} ms   {their_label:<30} {b:8.1f} ms   ratio {a / b:5.2f}x")


async def rotated(rep: int, actions: list[Callable[[], Awaitable[float]]]) -> list[float]:
    """Run `actions` starting with a different one each repetition; times in list order."""
    times = [0.0] * len(actions)
    for k in range(len(actions)):
        index = (rep + k) % len(actions)
        times[index] = await actions[index]()
    return times


async def bench(url: str, served: Path, work: Path, reps: int, files: int) -> None:
    repo = RepositoryConfig(url=url)
    app_path = "apps/app07"

    print(f"1. first sync of a new app (resolve + read_files {app_path}), median of {reps}")
    ours, library, shallow, full, stock = [], [], [], [], []
    for rep in range(reps):

        def first_sync(kind: type[GitCache], cache_dir: Path) -> Callable[[], Awaitable[float]]:
            async def run() -> None:
                async with kind(cache_dir) as cache:
                    head = await cache.resolve(repo, "main")
                    files_read = await cache.read_files(url, head, app_path)
                    assert len(files_read) == files // APPS

            return lambda: timed(run)

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

        times = await rotated(
            rep,
            [
                first_sync(GitCache, work / f"first-{rep}"),
                first_sync(LibraryCache, work / f"library-{rep}"),
                lambda rep=rep: timed(
                    lambda: run_git(
                        "clone",
                        "--quiet",
                        "--bare",
                        "--depth",
                        "1",
                        url,
                        str(work / f"depth1-{rep}"),
                    )
                ),
                lambda rep=rep: timed(
                    lambda: run_git("clone", "--quiet", "--bare", url, str(work / f"full-{rep}"))
                ),
                lambda: timed(lambda: asyncio.to_thread(stock_fetch)),
            ],
        )
        for series, value in zip((ours, library, shallow, full, stock), times, strict=True):
            series.append(value)
    report("GitCache first sync", ours, shallow, "git clone --bare --depth 1")
    report("LibraryCache first sync", library, shallow, "git clone --bare --depth 1")
    report("GitCache first sync", ours, library, "LibraryCache first sync")
    report("GitCache first sync", ours, full, "git clone --bare (full)")
    report("dulwich GitClient.fetch depth=1", stock, shallow, "git clone --bare --depth 1")

    print(f"2. incremental fetch of one new commit, median of {reps}")
    clone = work / "incremental-git"
    ours, library, theirs = [], [], []
    async with (
        GitCache(work / "incremental") as cache,
        LibraryCache(work / "incremental-library") as library_cache,
    ):
        await cache.resolve(repo, "main")
        await library_cache.resolve(repo, "main")
        await run_git("clone", "--quiet", "--bare", "--depth", "1", url, str(clone))
        for rep in range(reps):
            await asyncio.to_thread(push_one_commit, served, rep, files)
            expected = await git_output("-C", str(served), "rev-parse", "main")

            def incremental(
                cache: GitCache, expected: str = expected
            ) -> Callable[[], Awaitable[float]]:
                async def run() -> None:
                    assert await cache.resolve(repo, "main") == expected

                return lambda: timed(run)

            times = await rotated(
                rep,
                [
                    incremental(cache),
                    incremental(library_cache),
                    lambda: timed(
                        lambda: run_git(
                            "-C",
                            str(clone),
                            "fetch",
                            "--quiet",
                            "origin",
                            "+refs/heads/main:refs/heads/main",
                        )
                    ),
                ],
            )
            for series, value in zip((ours, library, theirs), times, strict=True):
                series.append(value)
        report("GitCache.resolve (1 new commit)", ours, theirs, "git fetch")
        report("LibraryCache.resolve (1 new commit)", library, theirs, "git fetch")
        report("GitCache.resolve (1 new commit)", ours, library, "LibraryCache.resolve")

    deep_reps = min(reps, 3)
    print(f"3. ancestry check that needs the whole history (shallow cache), median of {deep_reps}")
    ours, library, theirs = [], [], []
    root = (await git_output("-C", str(served), "rev-list", "--max-parents=0", "main")).split()[0]
    for rep in range(deep_reps):
        for kind, series in ((GitCache, ours), (LibraryCache, library)):
            async with kind(work / f"deep-{kind.__name__}-{rep}") as cache:
                head = await cache.resolve(repo, "main")

                async def ancestry(cache: GitCache = cache, head: CommitSha = head) -> None:
                    assert await cache.is_ancestor(url, CommitSha(root), head)

                series.append(await timed(ancestry))
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
    report("LibraryCache.is_ancestor (deepens)", library, theirs, "git fetch --unshallow")
    report("GitCache.is_ancestor (deepens)", ours, library, "LibraryCache.is_ancestor")


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
