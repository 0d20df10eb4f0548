"""The syncer's git cache against a real `git http-backend`: what it fetches, reads and refuses.

Repositories are written with the real git CLI (`working_copy`); the server runs on its
own thread, so the cache's worker threads talk to it while the test's loop stays free.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from dulwich.objects import ObjectID

from gitops.broker import free_port
from gitops.gitserver import GitHttpServer
from schemas.config import GitAuth, RepositoryConfig, SecretRef
from schemas.types import CommitSha
from syncer import gitmirror
from syncer.gitcache import (
    FileTooLargeError,
    GitCache,
    PermanentGitError,
    TransientGitError,
    UnsafePathError,
)
from tests.support.git import WorkingCopy

MakeCopy = Callable[..., WorkingCopy]


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[GitCache]:
    async with GitCache(tmp_path / "cache") as opened:
        yield opened


def repo_of(copy: WorkingCopy) -> RepositoryConfig:
    return RepositoryConfig(url=copy.remote_url)


def ref_listings(server: GitHttpServer, since: int = 0) -> int:
    """How many times a client asked the server for its refs (one per fetch or ls-remote)."""
    return sum(
        1 for _, path in server.request_log[since:] if "info/refs?service=git-upload-pack" in path
    )


def packs_in(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("*.pack"))


def sha(value: str) -> CommitSha:
    return CommitSha(value)


# -- resolving and fetching ---------------------------------------------------------------


async def test_first_resolve_fetches_the_pushed_commit_and_reads_its_files(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    pushed = wc.commit_and_push({"apps/web/deploy.yaml": "kind: Deployment\n", "README": "hi\n"})

    head = await cache.resolve(repo_of(wc), "main")

    assert head == pushed
    files = await cache.read_files(wc.remote_url, head, "apps/web")
    assert files == {"apps/web/deploy.yaml": b"kind: Deployment\n"}


async def test_second_commit_is_fetched_incrementally_onto_the_first(
    cache: GitCache, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    wc = working_copy()
    first = wc.commit_and_push({"a.yaml": "a: 1\n"})
    await cache.resolve(repo_of(wc), "main")
    second = wc.commit_and_push({"a.yaml": "a: 2\n"})
    before = len(git_server.request_log)

    head = await cache.resolve(repo_of(wc), "main")

    assert head == second
    assert ref_listings(git_server, before) == 1
    assert await cache.read_files(wc.remote_url, head, ".") == {"a.yaml": b"a: 2\n"}
    # the new commit was joined to the cached one, so history answers with no deepening
    before = len(git_server.request_log)
    assert await cache.is_ancestor(wc.remote_url, sha(first), head)
    assert len(git_server.request_log) == before


async def test_resolving_an_unchanged_branch_only_lists_refs(
    tmp_path: Path, cache: GitCache, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    wc = working_copy()
    pushed = wc.commit_and_push({"a.yaml": "a: 1\n"})
    await cache.resolve(repo_of(wc), "main")
    packs = packs_in(tmp_path / "cache")
    before = len(git_server.request_log)

    assert await cache.resolve(repo_of(wc), "main") == pushed
    assert ref_listings(git_server, before) == 1
    assert packs_in(tmp_path / "cache") == packs


async def test_resolving_a_cached_commit_asks_the_server_nothing(
    cache: GitCache, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    wc = working_copy()
    pushed = wc.commit_and_push({"a.yaml": "a: 1\n"})
    await cache.resolve(repo_of(wc), "main")
    before = len(git_server.request_log)

    assert await cache.resolve(repo_of(wc), "main", sha(pushed)) == pushed
    assert await cache.resolve(repo_of(wc), "main", sha(pushed[:8])) == pushed
    assert len(git_server.request_log) == before


async def test_concurrent_resolves_of_one_repository_share_one_fetch(
    cache: GitCache, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    wc = working_copy()
    pushed = wc.commit_and_push({"a.yaml": "a: 1\n"})

    heads = await asyncio.gather(*(cache.resolve(repo_of(wc), "main") for _ in range(8)))

    assert set(heads) == {pushed}
    assert cache.remote_calls() == 1
    assert ref_listings(git_server) == 1


async def test_an_older_commit_than_the_shallow_cache_is_fetched_by_deepening(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    old = wc.commit_and_push({"a.yaml": "a: old\n"})
    for n in range(3):
        wc.commit_and_push({"a.yaml": f"a: {n}\n"})
    await cache.resolve(repo_of(wc), "main")

    found = await cache.resolve(repo_of(wc), "main", sha(old))

    assert found == old
    assert await cache.read_files(wc.remote_url, found, ".") == {"a.yaml": b"a: old\n"}


async def test_cache_survives_reopening_without_a_refetch(
    tmp_path: Path, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    wc = working_copy()
    pushed = wc.commit_and_push({"a.yaml": "a: 1\n"})
    async with GitCache(tmp_path / "cache") as first:
        await first.resolve(repo_of(wc), "main")
    before = len(git_server.request_log)

    async with GitCache(tmp_path / "cache") as reopened:
        assert await reopened.resolve(repo_of(wc), "main", sha(pushed)) == pushed
        assert len(git_server.request_log) == before
        assert await reopened.resolve(repo_of(wc), "main") == pushed
        assert await reopened.read_files(wc.remote_url, sha(pushed), ".") == {"a.yaml": b"a: 1\n"}
    assert ref_listings(git_server, before) == 1
    assert len(packs_in(tmp_path / "cache")) == 1


async def test_a_lock_left_by_a_killed_syncer_does_not_block_the_next_fetch(
    tmp_path: Path, working_copy: MakeCopy
) -> None:
    """A SIGKILL mid-fetch leaves `refs/heads/main.lock`; the next process must still fetch."""
    wc = working_copy()
    wc.commit_and_push({"a.yaml": "a: 1\n"})
    async with GitCache(tmp_path / "cache") as first:
        await first.resolve(repo_of(wc), "main")
    (lock,) = [p for p in (tmp_path / "cache" / "repos").iterdir()]
    (lock / "refs" / "heads" / "main.lock").write_text("left by a killed process\n")

    second = wc.commit_and_push({"a.yaml": "a: 2\n"})
    async with GitCache(tmp_path / "cache") as reopened:
        assert await reopened.resolve(repo_of(wc), "main") == second
        assert await reopened.read_files(wc.remote_url, sha(second), ".") == {"a.yaml": b"a: 2\n"}


async def test_a_local_path_and_a_file_url_are_fetched_too(
    cache: GitCache, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    wc = working_copy("local")
    pushed = wc.commit_and_push({"apps/x/a.yaml": "a: 1\n"})
    bare = git_server.root / "local.git"

    for url in (str(bare), f"file://{bare}"):
        head = await cache.resolve(RepositoryConfig(url=url), "main")
        assert head == pushed
        assert await cache.read_files(url, head, "apps/x") == {"apps/x/a.yaml": b"a: 1\n"}


# -- reading files ------------------------------------------------------------------------


async def test_read_files_returns_every_file_below_the_path_recursively(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    wc.commit_and_push(
        {
            "apps/web/a.yaml": "a\n",
            "apps/web/sub/b.yaml": "b\n",
            "apps/web/sub/deeper/c.json": "{}\n",
            "apps/other/d.yaml": "d\n",
        }
    )
    head = await cache.resolve(repo_of(wc), "main")

    files = await cache.read_files(wc.remote_url, head, "apps/web/")

    assert files == {
        "apps/web/a.yaml": b"a\n",
        "apps/web/sub/b.yaml": b"b\n",
        "apps/web/sub/deeper/c.json": b"{}\n",
    }
    everything = await cache.read_files(wc.remote_url, head, ".")
    assert sorted(everything) == [
        "apps/other/d.yaml",
        "apps/web/a.yaml",
        "apps/web/sub/b.yaml",
        "apps/web/sub/deeper/c.json",
    ]


async def test_symlinks_inside_the_repository_are_read_through(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    wc.write({"shared/base.yaml": "base\n", "shared/lib/x.yaml": "x\n"})
    (wc.path / "apps/web").mkdir(parents=True)
    (wc.path / "apps/web/base.yaml").symlink_to("../../shared/base.yaml")
    (wc.path / "apps/web/lib").symlink_to("../../shared/lib")
    (wc.path / "apps/web/dangling.yaml").symlink_to("missing.yaml")
    wc.commit({})
    wc.push()
    head = await cache.resolve(repo_of(wc), "main")

    files = await cache.read_files(wc.remote_url, head, "apps/web")

    assert files == {"apps/web/base.yaml": b"base\n", "apps/web/lib/x.yaml": b"x\n"}


@pytest.mark.parametrize("target", ["../../../etc/passwd", "/etc/passwd"])
async def test_a_symlink_leaving_the_repository_is_refused(
    cache: GitCache, working_copy: MakeCopy, target: str
) -> None:
    wc = working_copy()
    wc.write({"apps/web/ok.yaml": "ok\n"})
    (wc.path / "apps/web/evil.yaml").symlink_to(target)
    wc.commit({})
    wc.push()
    head = await cache.resolve(repo_of(wc), "main")

    with pytest.raises(UnsafePathError) as caught:
        await cache.read_files(wc.remote_url, head, "apps/web")

    assert "apps/web/evil.yaml" in str(caught.value)
    assert target in str(caught.value)


@pytest.mark.parametrize("path", ["../outside", "apps/../../x", "/etc"])
async def test_a_path_that_could_leave_the_repository_is_refused(
    cache: GitCache, working_copy: MakeCopy, path: str
) -> None:
    wc = working_copy()
    head = wc.commit_and_push({"a.yaml": "a\n"})
    await cache.resolve(repo_of(wc), "main")

    with pytest.raises(UnsafePathError, match="must be relative"):
        await cache.read_files(wc.remote_url, sha(head), path)


async def test_a_missing_path_names_the_path_and_the_commit(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    head = wc.commit_and_push({"a.yaml": "a\n"})
    await cache.resolve(repo_of(wc), "main")

    with pytest.raises(PermanentGitError) as caught:
        await cache.read_files(wc.remote_url, sha(head), "apps/x")

    assert str(caught.value) == f"path apps/x does not exist in commit {head[:7]}"


async def test_a_file_over_the_size_limit_is_refused_with_its_name_and_size(
    tmp_path: Path, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    head = wc.commit_and_push({"apps/web/small.yaml": "a\n", "apps/web/big.yaml": "x" * 5000})

    async with GitCache(tmp_path / "cache", max_file_bytes=4096) as cache:
        await cache.resolve(repo_of(wc), "main")
        with pytest.raises(FileTooLargeError) as caught:
            await cache.read_files(wc.remote_url, sha(head), "apps/web")

    assert "apps/web/big.yaml" in str(caught.value)
    assert "5000 bytes" in str(caught.value)


async def test_submodules_are_skipped(cache: GitCache, working_copy: MakeCopy) -> None:
    wc = working_copy()
    wc.write({"apps/web/a.yaml": "a\n"})
    wc.git("add", "--all")
    wc.git("update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},apps/web/vendor")
    wc.git("commit", "--quiet", "-m", "with submodule")
    wc.push()
    head = await cache.resolve(repo_of(wc), "main")

    assert await cache.read_files(wc.remote_url, head, "apps/web") == {"apps/web/a.yaml": b"a\n"}


# -- history ------------------------------------------------------------------------------


async def test_is_ancestor_answers_both_ways_after_a_shallow_first_fetch(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    first = sha(wc.commit_and_push({"a.yaml": "1\n"}))
    wc.commit_and_push({"a.yaml": "2\n"})
    head = await cache.resolve(repo_of(wc), "main")  # shallow: only the head

    assert await cache.is_ancestor(wc.remote_url, first, head)
    assert not await cache.is_ancestor(wc.remote_url, head, first)
    assert await cache.is_ancestor(wc.remote_url, head, head)


async def test_is_ancestor_is_false_for_a_commit_on_another_line_of_history(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    base = wc.commit_and_push({"a.yaml": "1\n"})
    side = wc.commit({"b.yaml": "side\n"})
    wc.push(branch="side")
    wc.git("reset", "--quiet", "--hard", base)
    main = wc.commit_and_push({"a.yaml": "2\n"})
    await cache.resolve(repo_of(wc), "side")
    await cache.resolve(repo_of(wc), "main")

    assert not await cache.is_ancestor(wc.remote_url, sha(side), sha(main))
    assert await cache.is_ancestor(wc.remote_url, sha(base), sha(side))


async def test_a_new_commit_is_found_not_older_than_the_applied_one_without_reading_history(
    cache: GitCache, working_copy: MakeCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The question the syncer asks on every push (is the pushed commit an ancestor of the
    applied one?) costs a few steps, not a walk of the whole cached history."""
    wc = working_copy()
    first = sha(wc.commit({"a.yaml": "0\n"}))
    for i in range(1, 60):
        wc.commit({"a.yaml": f"{i}\n"})
    wc.push()
    applied = await cache.resolve(repo_of(wc), "main")
    assert await cache.is_ancestor(wc.remote_url, first, applied)  # deepens: all 60 cached
    pushed = await cache.resolve(repo_of(wc), "main", sha(wc.commit_and_push({"a.yaml": "n\n"})))
    steps = 0
    step = gitmirror._ParentWalk.next

    def counted(walk: gitmirror._ParentWalk) -> ObjectID:
        nonlocal steps
        steps += 1
        return step(walk)

    monkeypatch.setattr(gitmirror._ParentWalk, "next", counted)

    assert not await cache.is_ancestor(wc.remote_url, pushed, applied)
    assert steps <= 4
    steps = 0
    assert await cache.is_ancestor(wc.remote_url, applied, pushed)
    assert steps <= 4
    assert not await cache.is_ancestor(wc.remote_url, pushed, first)  # the whole way: 60 back
    assert await cache.is_ancestor(wc.remote_url, first, pushed)


async def test_many_pushes_leave_a_few_packs_and_every_commit_readable_while_reads_run(
    tmp_path: Path, cache: GitCache, working_copy: MakeCopy
) -> None:
    """Each fetch adds a pack; the cache merges them as they pile up (removing the merged
    ones) while other reads of the same mirror go on, and none of those reads fails."""
    wc = working_copy()
    commits = [await cache.resolve(repo_of(wc), "main", sha(wc.commit_and_push({"a.yaml": "0\n"})))]
    most = 0
    stop = asyncio.Event()

    async def reader() -> int:
        reads = 0
        while not stop.is_set():
            for commit in list(commits):
                number = commits.index(commit)
                assert await cache.read_files(wc.remote_url, commit, ".") == {
                    "a.yaml": f"{number}\n".encode()
                }
                reads += 1
            await asyncio.sleep(0)
        return reads

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    try:
        for i in range(1, 2 * gitmirror.PACK_LIMIT + 2):
            pushed = sha(wc.commit_and_push({"a.yaml": f"{i}\n"}))
            commits.append(await cache.resolve(repo_of(wc), "main", pushed))
            most = max(most, len(packs_in(tmp_path / "cache")))
    finally:
        stop.set()
        reads = await asyncio.gather(*readers)
    assert most <= gitmirror.PACK_LIMIT + 1
    assert all(count > 0 for count in reads)
    assert await cache.is_ancestor(wc.remote_url, commits[0], commits[-1])
    for number, commit in enumerate(commits):
        assert await cache.read_files(wc.remote_url, commit, ".") == {
            "a.yaml": f"{number}\n".encode()
        }


async def test_packs_are_merged_only_while_no_other_call_runs_on_that_mirror(
    cache: GitCache, working_copy: MakeCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read still running on its thread (even one whose caller gave up) holds the merge
    off, and calls that come while the merge waits or runs start after it."""
    wc = working_copy()
    await cache.resolve(repo_of(wc), "main", sha(wc.commit_and_push({"a.yaml": "0\n"})))
    mirror = cache._mirror_for_url(wc.remote_url)
    order: list[str] = []
    reading, release = threading.Event(), threading.Event()

    def slow_read() -> None:
        reading.set()
        release.wait(10)
        order.append("read")

    def merge(limit: int = gitmirror.PACK_LIMIT) -> int:
        order.append("merge")
        return 0

    monkeypatch.setattr(mirror, "merge_packs", merge)
    abandoned = asyncio.create_task(cache._run(mirror, "reading", slow_read))
    await asyncio.to_thread(reading.wait, 10)
    abandoned.cancel()  # its thread goes on
    merging = asyncio.create_task(cache._merge_packs(mirror))
    await asyncio.sleep(0.05)
    later = asyncio.create_task(cache._run(mirror, "reading", lambda: order.append("later")))
    await asyncio.sleep(0.2)
    assert order == []
    release.set()
    await asyncio.wait_for(asyncio.gather(merging, later), timeout=10)
    assert order == ["read", "merge", "later"]
    assert abandoned.cancelled()


async def test_changed_paths_lists_exactly_the_files_that_changed(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    wc.commit_and_push({"apps/a/x.yaml": "1\n", "apps/b/y.yaml": "1\n", "apps/c/z.yaml": "1\n"})
    before = await cache.resolve(repo_of(wc), "main")
    wc.commit_and_push({"apps/a/x.yaml": "2\n", "apps/c/z.yaml": None, "apps/d/new.yaml": "n\n"})
    after = await cache.resolve(repo_of(wc), "main")

    changed = await cache.changed_paths(wc.remote_url, before, after)

    assert changed == ["apps/a/x.yaml", "apps/c/z.yaml", "apps/d/new.yaml"]


async def test_many_apps_asking_for_one_push_get_each_pair_of_commits_answered_right(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    wc.commit_and_push({"apps/a/x.yaml": "1\n", "apps/b/y.yaml": "1\n"})
    first = await cache.resolve(repo_of(wc), "main")
    wc.commit_and_push({"apps/a/x.yaml": "2\n"})
    second = await cache.resolve(repo_of(wc), "main")
    wc.commit_and_push({"apps/b/y.yaml": "2\n"})
    third = await cache.resolve(repo_of(wc), "main")

    answers = await asyncio.gather(
        *(cache.changed_paths(wc.remote_url, first, second) for _ in range(50)),
        cache.changed_paths(wc.remote_url, second, third),
    )
    again = await cache.changed_paths(wc.remote_url, first, second)

    assert answers[:50] == [["apps/a/x.yaml"]] * 50
    assert answers[50] == ["apps/b/y.yaml"]
    assert again == ["apps/a/x.yaml"]
    assert await cache.changed_paths(wc.remote_url, first, third) == [
        "apps/a/x.yaml",
        "apps/b/y.yaml",
    ]


async def test_changed_paths_is_none_when_before_is_unknown(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    head = sha(wc.commit_and_push({"a.yaml": "1\n"}))
    await cache.resolve(repo_of(wc), "main")

    assert await cache.changed_paths(wc.remote_url, sha("0" * 40), head) is None
    assert await cache.changed_paths(wc.remote_url, sha("1" * 40), head) is None


async def test_ls_remote_returns_branch_heads_without_fetching_objects(
    tmp_path: Path, cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    main = wc.commit_and_push({"a.yaml": "1\n"})
    feature = wc.commit({"b.yaml": "2\n"})
    wc.push(branch="feature")

    heads = await cache.ls_remote(repo_of(wc))

    assert heads == {"refs/heads/main": main, "refs/heads/feature": feature}
    assert packs_in(tmp_path / "cache") == []
    assert cache.remote_calls() == 1


# -- failures -----------------------------------------------------------------------------


async def test_an_unknown_commit_names_the_branch_and_the_url(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    wc.commit_and_push({"a.yaml": "1\n"})

    with pytest.raises(PermanentGitError) as caught:
        await cache.resolve(repo_of(wc), "main", sha("abc1234" + "0" * 33))

    assert str(caught.value) == (
        f"commit abc1234{'0' * 33} is not on branch main of {wc.remote_url}"
    )


async def test_an_unknown_branch_names_the_branch_and_the_url(
    cache: GitCache, working_copy: MakeCopy
) -> None:
    wc = working_copy()
    wc.commit_and_push({"a.yaml": "1\n"})

    with pytest.raises(PermanentGitError, match="branch release") as caught:
        await cache.resolve(repo_of(wc), "release")

    assert wc.remote_url in str(caught.value)


async def test_a_repository_that_does_not_exist_is_a_permanent_error(
    cache: GitCache, git_server: GitHttpServer
) -> None:
    with pytest.raises(PermanentGitError, match="no git repository"):
        await cache.resolve(RepositoryConfig(url=git_server.repo_url("missing")), "main")


async def test_an_unreachable_server_is_a_transient_error(cache: GitCache) -> None:
    url = f"http://127.0.0.1:{free_port()}/repo.git"

    with pytest.raises(TransientGitError, match="connection refused"):
        await cache.resolve(RepositoryConfig(url=url), "main")


# -- credentials --------------------------------------------------------------------------


class AuthProxy:
    """A git host that wants HTTP basic auth (or is failing), in front of the real server."""

    def __init__(self, upstream: str, username: str, token: str) -> None:
        self.upstream = upstream
        self.expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
        self.port = free_port()
        self.failing_status: int | None = None
        self.seen_auth: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen_auth.append(request.headers.get("Authorization"))
        if self.failing_status is not None:
            return web.Response(status=self.failing_status, text="unavailable")
        if request.headers.get("Authorization") != self.expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="git"'})
        forwarded = {
            k: v
            for k, v in request.headers.items()
            if k in ("Content-Type", "Git-Protocol", "Content-Encoding", "Accept")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=await request.read(),
                headers=forwarded,
            ) as response,
        ):
            body = await response.read()
            headers = {"Content-Type": response.headers.get("Content-Type", "")}
            return web.Response(status=response.status, body=body, headers=headers)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[AuthProxy]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


@pytest.fixture
def proxy_for(git_server: GitHttpServer) -> Iterator[Callable[[str], AuthProxy]]:
    yield lambda token: AuthProxy(git_server.url, "oauth2", token)


def private_repo(proxy: AuthProxy, name: str, token: str) -> RepositoryConfig:
    return RepositoryConfig(
        url=f"{proxy.url}/{name}.git",
        auth=GitAuth(token=SecretRef(value=token), username="oauth2"),  # type: ignore[arg-type]
    )


async def test_the_token_is_sent_as_basic_auth(
    cache: GitCache, working_copy: MakeCopy, proxy_for: Callable[[str], AuthProxy]
) -> None:
    wc = working_copy("private")
    pushed = wc.commit_and_push({"a.yaml": "1\n"})

    async with proxy_for("s3cret-token").running() as proxy:
        head = await cache.resolve(private_repo(proxy, "private", "s3cret-token"), "main")

    assert head == pushed
    assert proxy.seen_auth and set(proxy.seen_auth) == {proxy.expected}


async def test_a_refused_token_is_permanent_and_never_shown(
    cache: GitCache, working_copy: MakeCopy, proxy_for: Callable[[str], AuthProxy]
) -> None:
    wc = working_copy("private")
    wc.commit_and_push({"a.yaml": "1\n"})

    async with proxy_for("right-token").running() as proxy:
        with pytest.raises(PermanentGitError, match="credentials") as caught:
            await cache.resolve(private_repo(proxy, "private", "wrong-token"), "main")

    assert "wrong-token" not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_credentials_in_the_url_never_appear_in_errors(
    cache: GitCache, git_server: GitHttpServer
) -> None:
    url = git_server.repo_url("missing").replace("http://", "http://user:hunter2@")

    with pytest.raises(PermanentGitError) as caught:
        await cache.resolve(RepositoryConfig(url=url), "main")

    assert "hunter2" not in str(caught.value)
    assert git_server.repo_url("missing") in str(caught.value)


async def test_a_server_error_is_transient(
    cache: GitCache, working_copy: MakeCopy, proxy_for: Callable[[str], AuthProxy]
) -> None:
    wc = working_copy("private")
    wc.commit_and_push({"a.yaml": "1\n"})

    async with proxy_for("t").running() as proxy:
        proxy.failing_status = 503
        with pytest.raises(TransientGitError, match="503"):
            await cache.resolve(private_repo(proxy, "private", "t"), "main")


async def test_close_is_idempotent(tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache")
    await cache.close()
    await cache.close()


# -- packs with deltas -------------------------------------------------------------------


async def test_a_delta_compressed_history_reads_back_every_commit_as_pushed(
    cache: GitCache, working_copy: MakeCopy, git_server: GitHttpServer
) -> None:
    """Shallow first fetch, thin incremental packs and a deepening, all of a repacked history."""
    wc = working_copy("deltas")

    def files_at(n: int) -> dict[str, bytes]:
        files = {f"apps/a{k % 5}/f{k}.yaml": (f"v: {k}\n" * 50).encode() for k in range(n + 1)}
        return {**files, "shared.yaml": (f"rev: {n}\n" * 40).encode()}

    commits = []
    for n in range(30):
        if n == 28:
            wc.push()
            served = git_server.root / "deltas.git"
            subprocess.run(["git", "-C", str(served), "gc", "--quiet", "--aggressive"], check=True)
            await cache.resolve(repo_of(wc), "main")  # shallow: deltas within one tree
        commits.append(wc.commit(files_at(n)))
    wc.push()

    assert await cache.resolve(repo_of(wc), "main") == commits[-1]  # thin: against cached blobs
    assert await cache.resolve(repo_of(wc), "main", sha(commits[0])) == commits[0]  # deepens
    for n, commit in enumerate(commits):
        assert await cache.read_files(wc.remote_url, sha(commit), ".") == files_at(n)
