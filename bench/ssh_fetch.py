"""SSH fetch figures for the syncer's cache, against the git CLI over the same sshd.

A repository of `--commits` commits and `--files` manifests (generated as `bench/fetch.py`
does) is served by a real OpenSSH server on 127.0.0.1 (`testbed.sshd`, Debian's
`/usr/sbin/sshd`) and fetched with an ed25519 deploy key and the server's pinned host
key by each contender, `--reps` times:

1. first sync of a new app: `GitCache.resolve` + `read_files` of one app directory into
   an empty cache, against `git clone --bare --depth 1`;
2. incremental fetch of one new commit: `GitCache.resolve` after one push, against
   `git fetch` of that branch into a clone in the same state.

git runs with `GIT_SSH_COMMAND` set to the same OpenSSH options the syncer uses (strict
host key checking against the same known_hosts, the same key only), so both sides pay
the same handshake. Each figure is the median; ratios are ours / git's (lower is better).

    python bench/ssh_fetch.py [--commits 500] [--files 1000] [--reps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fetch import APPS, generate, git_output, push_one_commit, report, timed  # noqa: E402

from schemas.config import RepositoryConfig  # noqa: E402
from syncer.gitcache import GitCache  # noqa: E402
from syncer.gitssh import SshIdentity, ssh_options  # noqa: E402
from testbed.sshd import SshServer, keygen, sshd_available  # noqa: E402


async def run_git(env: dict[str, str], *args: str) -> None:
    process = await asyncio.create_subprocess_exec("git", *args, env=env)
    if await process.wait() != 0:
        raise RuntimeError(f"git {' '.join(args)} failed")


async def bench(server: SshServer, key: Path, known_hosts: Path, work: Path, reps: int,
                files: int) -> None:  # fmt: skip
    url = server.url("bench")
    served = server.repos / "bench.git"
    repo = RepositoryConfig.model_validate(
        {
            "url": url,
            "auth": {
                "ssh": {
                    "private_key": {"file": str(key)},
                    "known_hosts": {"file": str(known_hosts)},
                }
            },
        }
    )
    options = ssh_options(SshIdentity(key, known_hosts), timeout=30)
    env = {**os.environ, "GIT_SSH_COMMAND": shlex.join(["ssh", "-x", *options])}
    app_path = "apps/app07"

    print(f"1. first sync of a new app (resolve + read_files {app_path}), median of {reps}")
    ours, theirs = [], []
    for rep in range(reps):
        cache_dir = work / f"first-{rep}"

        async def first_sync(cache_dir: Path = cache_dir) -> None:
            async with GitCache(cache_dir) as cache:
                head = await cache.resolve(repo, "main")
                assert len(await cache.read_files(url, head, app_path)) == files // APPS

        clone = str(work / f"depth1-{rep}")

        async def git_clone(clone: str = clone) -> None:
            await run_git(env, "clone", "--quiet", "--bare", "--depth", "1", url, clone)

        # Alternate who goes first, so neither always meets a warm server.
        if rep % 2:
            ours.append(await timed(first_sync))
            theirs.append(await timed(git_clone))
        else:
            theirs.append(await timed(git_clone))
            ours.append(await timed(first_sync))
    report("GitCache first sync over SSH", ours, theirs, "git clone --bare --depth 1")

    print(f"2. incremental fetch of one new commit, median of {reps}")
    clone = work / "incremental-git"
    ours, theirs = [], []
    async with GitCache(work / "incremental") as cache:
        await cache.resolve(repo, "main")
        await run_git(env, "clone", "--quiet", "--bare", "--depth", "1", url, str(clone))
        for rep in range(reps):
            await asyncio.to_thread(push_one_commit, served, rep, files)
            expected = await git_output("-C", str(served), "rev-parse", "main")

            async def incremental(expected: str = expected) -> None:
                assert await cache.resolve(repo, "main") == expected

            async def git_fetch() -> None:
                await run_git(env, "-C", str(clone), "fetch", "--quiet", "origin",
                              "+refs/heads/main:refs/heads/main")  # fmt: skip

            if rep % 2:
                ours.append(await timed(incremental))
                theirs.append(await timed(git_fetch))
            else:
                theirs.append(await timed(git_fetch))
                ours.append(await timed(incremental))
    report("GitCache.resolve (1 new commit)", ours, theirs, "git fetch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.reps <= 20 or args.commits < 2 or args.files < APPS:
        parser.error("need 1 <= --reps <= 20, --commits >= 2 and --files >= 50")
    if not sshd_available():
        parser.error("needs Debian's openssh-server (/usr/sbin/sshd) and ssh")

    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as scratch:
        base = Path(scratch)
        with SshServer(base / "sshd") as server:
            key = keygen(base / "keys" / "deploy")
            server.authorize(key.with_suffix(".pub"))
            known_hosts = base / "known_hosts"
            known_hosts.write_text(server.known_hosts_line() + "\n")
            started = time.perf_counter()
            generate(server.repos / "bench.git", args.commits, args.files)
            packed = server.repos / "bench.git"
            size = sum(p.stat().st_size for p in packed.rglob("*") if p.is_file())
            print(
                f"repository: {args.commits} commits, {args.files} files, {size / 1e6:.1f} MB "
                f"packed (generated in {time.perf_counter() - started:.1f} s); "
                f"sshd on 127.0.0.1:{server.port}"
            )
            work = base / "work"
            work.mkdir()
            began = time.perf_counter()
            asyncio.run(bench(server, key, known_hosts, work, args.reps, args.files))
            print(f"measured in {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
