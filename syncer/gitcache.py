"""The syncer's git cache: one bare mirror per repository URL, fetched as little as possible.

Time to the first sync of a new app is dominated by the first fetch, so a branch is first
fetched shallow (depth 1: one commit and its tree) and later fetches are incremental from
what the cache holds. History is only deepened when a question needs it: a commit older
than the cached one, or an ancestry check the shallow history cannot answer.

Every dulwich call blocks, so each runs on this cache's own bounded thread pool. Fetches
of one URL are serialised by a per-URL lock, and concurrent callers that want the same
branch of the same URL share one in-flight fetch instead of queueing behind each other.
Each fetch adds a pack; once a mirror holds many, the small ones are merged right after a
fetch, while no other call on that mirror runs (a per-URL gate), since merged packs are
removed.
Mirrors live under `cache_dir/repos/<sha256(normalised url)[:16]>` and survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

from credentials import HostCredentials
from schemas.config import RepositoryConfig
from schemas.types import CommitSha
from syncer.gitaccess import GitAccess
from syncer.giterrors import (
    CredentialsRefusedError,
    FileTooLargeError,
    GitError,
    PermanentGitError,
    TransientGitError,
    UnsafePathError,
    safe_url,
    translate,
)
from syncer.gitmirror import INFINITE_DEPTH, NO_ACCESS, Mirror, short

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_REMEMBERED_COMPARISONS = 64
"""Pairs of commits whose changed paths are kept (each as long as its list of paths)."""

_FIRST_DEEPEN = 64
"""Commits fetched by the first deepening; most older requests lie this close to the head."""


class _Gate:
    """The calls running on one mirror, and the rare step that must run with none of them.

    A call counts from before its thread starts until the thread is done, not until its
    caller stops waiting: a cancelled caller leaves a dulwich call running on its thread.
    """

    def __init__(self) -> None:
        self._running = 0
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def enter(self) -> None:
        while not self._open.is_set():
            await self._open.wait()
        self._running += 1
        self._idle.clear()

    def leave(self) -> None:
        self._running -= 1
        if self._running == 0:
            self._idle.set()

    async def close(self) -> None:
        """Until no call runs; no call starts until `reopen()`."""
        while not self._open.is_set():
            await self._open.wait()
        self._open.clear()
        try:
            while self._running:
                await self._idle.wait()
        except BaseException:
            self.reopen()
            raise

    def reopen(self) -> None:
        self._open.set()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """`callback` on `loop` from a worker thread; nothing once the loop has closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


def cache_key(url: str) -> str:
    """The mirror directory name of a URL: the same repository always lands in one place."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        netloc = f"{host}:{parts.port}" if parts.port else host
        path = parts.path.rstrip("/").removesuffix(".git")
        text = urlunsplit((parts.scheme.lower(), netloc, path, "", ""))
    else:
        text = text.rstrip("/").removesuffix(".git")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class GitCache:
    """Resolve commits, read their files and compare them, over one local mirror per URL."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_file_bytes: int = 4 * 1024 * 1024,
        timeout: float = 30.0,
        max_threads: int = 4,
        credentials: HostCredentials | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self._access = GitAccess(credentials)
        self.max_file_bytes = max_file_bytes
        self.timeout = timeout
        self._max_threads = max_threads
        self._executor: ThreadPoolExecutor | None = None
        self._mirrors: dict[str, Mirror] = {}
        self._secrets: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gates: dict[str, _Gate] = {}
        self._inflight: dict[tuple[str, ...], asyncio.Task[Any]] = {}
        self._changes: OrderedDict[tuple[str, str, str], list[str]] = OrderedDict()
        self._remote_calls = 0
        self._closed = False

    async def __aenter__(self) -> GitCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel shared fetches and stop the worker threads; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._inflight.values())
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        executor, self._executor = self._executor, None
        if executor is not None:
            # A running dulwich call cannot be interrupted; wait for it off the loop.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        for mirror in self._mirrors.values():
            mirror.close()
        await self._access.close()

    def remote_calls(self) -> int:
        """Network round trips started so far (ref listings and fetches), for tests."""
        return self._remote_calls

    # -- public API -------------------------------------------------------------------

    async def resolve(
        self, repo: RepositoryConfig, branch: str, commit: CommitSha | None = None
    ) -> CommitSha:
        """Make sure `commit` (or the branch head when None) is cached; return its full sha.

        A commit the cache already holds costs no network call; otherwise the branch is
        fetched (shallow the first time, incrementally after), then deepened step by step
        when the commit is older than the history at hand.
        """
        return await self._renewing(repo, self._resolve, repo, branch, commit)

    async def _resolve(
        self, repo: RepositoryConfig, branch: str, commit: CommitSha | None
    ) -> CommitSha:
        mirror = await self._mirror_for(repo)
        if commit is not None:
            found = await self._find(mirror, commit)
            if found is not None:
                return found
        head = await self._shared(("fetch", mirror.url, branch), self._fetch_branch, mirror, branch)
        if commit is None:
            return head
        found = await self._find(mirror, commit)
        if found is not None:
            return found
        for depth in (_FIRST_DEEPEN, INFINITE_DEPTH):
            if not await self._run(mirror, "checking history", mirror.is_shallow):
                break
            await self._shared(
                ("deepen", mirror.url, branch, str(depth)), self._deepen, mirror, [branch], depth
            )
            found = await self._find(mirror, commit)
            if found is not None:
                return found
        raise PermanentGitError(
            f"commit {commit} is not on branch {branch} of {mirror.display_url}"
        )

    async def read_files(self, url: str, commit: CommitSha, path: str) -> dict[str, bytes]:
        """Every file under `path` of `commit`, by repository-relative posix path, no checkout."""
        mirror = self._mirror_for_url(url)
        return await self._run(
            mirror,
            f"reading {path} at {short(commit)}",
            mirror.read_files,
            commit,
            path,
            self.max_file_bytes,
        )

    async def match_paths(
        self,
        url: str,
        commit: CommitSha,
        include: list[str],
        exclude: list[str],
        *,
        directories: bool,
    ) -> list[str]:
        """Directories (or files) of a cached commit matched by app-set globs."""
        mirror = self._mirror_for_url(url)
        return await self._run(
            mirror,
            f"matching {', '.join(include)} at {short(commit)}",
            functools.partial(mirror.match_paths, directories=directories),
            commit,
            include,
            exclude,
        )

    async def commit_signature(self, url: str, commit: CommitSha) -> tuple[bytes | None, bytes]:
        """(signature or None, signed payload) of a cached commit, for commit verification."""
        mirror = self._mirror_for_url(url)
        return await self._run(
            mirror, f"reading commit {short(commit)}", mirror.commit_signature, commit
        )

    async def is_ancestor(self, url: str, ancestor: CommitSha, descendant: CommitSha) -> bool:
        """Whether `ancestor` is in the history of `descendant`; deepens a shallow cache."""
        mirror = self._mirror_for_url(url)
        found = await self._run(
            mirror, "checking ancestry", mirror.is_ancestor, ancestor, descendant
        )
        if found is not None:
            return found
        branches = await self._run(mirror, "listing branches", mirror.local_branches)
        for depth in (_FIRST_DEEPEN, INFINITE_DEPTH):
            key = ("deepen-all", mirror.url, str(depth))
            await self._shared(key, self._deepen, mirror, branches, depth)
            found = await self._run(
                mirror, "checking ancestry", mirror.is_ancestor, ancestor, descendant
            )
            if found is not None:
                return found
        if await self._find(mirror, descendant) is None:
            raise PermanentGitError(
                f"commit {descendant} is not in {mirror.display_url} (not on any cached branch)"
            )
        return False

    async def changed_paths(
        self, url: str, before: CommitSha, after: CommitSha
    ) -> list[str] | None:
        """Paths that differ between two commits; None when `before` is not in the cache.

        Remembered per pair of commits (their ids name their content, so the answer never
        changes) and computed once for concurrent callers: a push that touches a thousand
        apps of one monorepo asks the same question once per app, and each answer walks
        both trees of the whole repository.
        """
        mirror = self._mirror_for_url(url)
        if not mirror.exists() or set(before) == {"0"}:
            return None
        key = (url, before, after)
        if key in self._changes:
            self._changes.move_to_end(key)
            return self._changes[key]
        changed = await self._shared(("changed", *key), self._compare, mirror, before, after)
        if changed is not None:
            self._changes[key] = changed
            while len(self._changes) > _REMEMBERED_COMPARISONS:
                self._changes.popitem(last=False)
        return changed

    async def _compare(self, mirror: Mirror, before: str, after: str) -> list[str] | None:
        return await self._run(mirror, "comparing commits", mirror.changed_paths, before, after)

    async def ls_remote(self, repo: RepositoryConfig) -> dict[str, CommitSha]:
        """The server's branch heads, `refs/heads/<name>` → sha, without fetching objects."""
        return await self._renewing(repo, self._ls_remote, repo)

    async def _ls_remote(self, repo: RepositoryConfig) -> dict[str, CommitSha]:
        mirror = await self._mirror_for(repo)
        self._remote_calls += 1
        return await self._run(mirror, "listing branches", mirror.ls_remote)

    # -- internals --------------------------------------------------------------------

    async def _renewing(
        self,
        repo: RepositoryConfig,
        operation: Callable[P, Coroutine[object, object, T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`operation`, once more with fresh credentials when the host refused minted ones
        (an installation token revoked or expired early)."""
        try:
            return await operation(*args, **kwargs)
        except CredentialsRefusedError:
            if not self._access.renew(repo):
                raise
            log.info("the git host refused the token for %s; minted a new one", safe_url(repo.url))
            return await operation(*args, **kwargs)

    async def _mirror_for(self, repo: RepositoryConfig) -> Mirror:
        """The mirror of a configured repository, with its current access (credentials,
        CA bundle, proxy or SSH identity); a change drops the mirror's connections."""
        access = await self._access.access(repo)
        mirror = self._mirror_for_url(repo.url)
        if mirror.access != access:
            mirror.access = access
            mirror.reset_transport()
        if access.credentials is not None:
            self._secrets[mirror.url] = access.credentials.password
        return mirror

    def _mirror_for_url(self, url: str) -> Mirror:
        if self._closed:
            raise RuntimeError("the git cache is closed")
        key = cache_key(url)
        mirror = self._mirrors.get(key)
        if mirror is None:
            path = self.cache_dir / "repos" / key
            mirror = Mirror(path, url, access=NO_ACCESS, timeout=self.timeout)
            for lock in mirror.clear_stale_locks():
                log.warning("removed stale lock %s left by an earlier process", lock)
            self._mirrors[key] = mirror
        return mirror

    def _lock(self, mirror: Mirror) -> asyncio.Lock:
        return self._locks.setdefault(mirror.url, asyncio.Lock())

    def _gate(self, mirror: Mirror) -> _Gate:
        return self._gates.setdefault(mirror.url, _Gate())

    async def _find(self, mirror: Mirror, commit: str) -> CommitSha | None:
        return await self._run(mirror, f"looking up {short(commit)}", mirror.find_commit, commit)

    async def _fetch_branch(self, mirror: Mirror, branch: str) -> CommitSha:
        async with self._lock(mirror):
            have = await self._run(mirror, "reading refs", mirror.local_head, branch)
            depth = None if have is not None else 1
            self._remote_calls += 1
            head = await self._run(
                mirror, f"fetching branch {branch}", mirror.fetch_branch, branch, depth=depth
            )
            log.debug("fetched %s of %s: %s", branch, mirror.display_url, short(head))
            await self._merge_packs(mirror)
            return head

    async def _deepen(self, mirror: Mirror, branches: list[str], depth: int) -> None:
        async with self._lock(mirror):
            self._remote_calls += 1
            await self._run(mirror, "fetching more history", mirror.deepen, branches, depth=depth)
            await self._merge_packs(mirror)

    async def _merge_packs(self, mirror: Mirror) -> None:
        """Merge the mirror's small packs when there are many, with no other call running."""
        gate = self._gate(mirror)
        await gate.close()
        merged = await self._on_thread(mirror, "merging packs", gate.reopen, mirror.merge_packs)
        if merged:
            log.debug("merged %d packs of %s", merged, mirror.display_url)

    async def _shared(
        self,
        key: tuple[str, ...],
        operation: Callable[..., Coroutine[object, object, T]],
        *args: object,
    ) -> T:
        """Run `operation` once for all concurrent callers with the same key."""
        task = self._inflight.get(key)
        if task is None or task.done():
            task = asyncio.create_task(operation(*args), name=f"gitcache:{':'.join(key)}")
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
        # shield: one caller giving up must not cancel the fetch the others wait for
        result: T = await asyncio.shield(task)
        return result

    def _forget(self, key: tuple[str, ...], task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an abandoned failure is not logged as lost

    async def _run(
        self, mirror: Mirror, action: str, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a blocking mirror call on the pool; every library error leaves as a GitError."""
        gate = self._gate(mirror)
        await gate.enter()
        return await self._on_thread(mirror, action, gate.leave, call, *args, **kwargs)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            if self._closed:
                raise RuntimeError("the git cache is closed")
            self._executor = ThreadPoolExecutor(
                max_workers=self._max_threads, thread_name_prefix="gitcache"
            )
        return self._executor

    async def _on_thread(
        self,
        mirror: Mirror,
        action: str,
        done: Callable[[], None],
        call: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`call` on the pool; `done()` on the loop once it has finished (or never started)."""
        loop = asyncio.get_running_loop()
        try:
            future = self._pool().submit(call, *args, **kwargs)
        except BaseException:
            done()
            raise
        future.add_done_callback(lambda _: _call_soon(loop, done))
        try:
            return await asyncio.wrap_future(future)
        except GitError:
            raise
        except Exception as exc:  # noqa: BLE001 - the one place library errors become GitErrors
            secrets = [self._secrets[mirror.url]] if mirror.url in self._secrets else []
            raise translate(exc, url=mirror.url, action=action, secrets=secrets) from None


__all__ = [
    "FileTooLargeError",
    "GitCache",
    "GitError",
    "PermanentGitError",
    "TransientGitError",
    "UnsafePathError",
    "cache_key",
]
