"""One bare repository on disk that mirrors one remote: the blocking half of the git cache.

Every method here blocks (dulwich does file and socket I/O), so `syncer.gitcache` runs
them on worker threads and makes sure only one fetch per mirror runs at a time. Each call
opens the repository afresh and closes it again, so readers on other threads never share
dulwich state with a fetch in progress; a fetched pack becomes visible only once its
index is written, because dulwich ignores a `.pack` without its `.idx`.

Fetches go through dulwich's `GitClient.fetch`: it spools the pack, indexes it, completes
a thin pack and checks its checksum, then parses every object and removes the pack again
if one is malformed. A one-pass indexer of our own, measured against it, saved too little of a first
sync or of push → applied to keep (docs/performance.md, "Git fetch decision").
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlparse

from dulwich.client import (
    GitClient,
    SSHGitClient,
    Urllib3HttpGitClient,
    default_urllib3_manager,
    default_user_agent_string,
    get_transport_and_path,
)
from dulwich.config import ConfigDict
from dulwich.diff_tree import tree_changes
from dulwich.objects import Commit, ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from schemas.config import is_ssh_url
from schemas.types import CommitSha
from syncer.giterrors import (
    HttpStatusError,
    PermanentGitError,
    safe_url,
)
from syncer.gitglob import match_tree
from syncer.gitssh import SshGitClient, SshIdentity
from syncer.gittree import TreeReader

if TYPE_CHECKING:
    import urllib3
    from dulwich.client import DetermineWantsFunc

INFINITE_DEPTH = 0x7FFFFFFF
"""The depth git itself sends for `--unshallow`."""

PACK_LIMIT = 16
"""Packs a mirror may hold before its small ones are merged (git merges at 50,
`gc.autoPackLimit`): every fetch adds one, and dulwich opens and searches every pack of
the repository for each read, so without merging every read slows down with each push
the cache has seen."""

_HEADS = Ref(b"refs/heads/")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")


class MissingBranchError(PermanentGitError):
    """The remote has no such branch; raised from inside dulwich's want negotiation."""


@dataclass(frozen=True)
class Credentials:
    """HTTP basic-auth user and token; kept out of repr so it cannot reach a log."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class Access:
    """Everything a mirror needs to reach its remote besides the URL (see `syncer.gitaccess`)."""

    credentials: Credentials | None = None
    """HTTP basic auth (a token, or a GitHub App installation token)."""
    ca_bundle: str | None = None
    """PEM file of the CAs to trust for HTTPS instead of the system's."""
    proxy: str | None = None
    """HTTP(S) proxy URL for HTTPS remotes."""
    ssh: SshIdentity | None = None
    """Key and known_hosts files for SSH remotes."""


NO_ACCESS = Access()


def short(sha: str) -> str:
    return sha[:7]


class Mirror:
    """A bare repository under the cache directory that mirrors `url`; all methods block."""

    def __init__(self, path: Path, url: str, *, access: Access, timeout: float) -> None:
        self.path = path
        self.url = url
        self.access = access
        self.timeout = timeout
        self._client: tuple[GitClient, str] | None = None
        self._client_lock = threading.Lock()  # ls-remote and a fetch may start together

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    # -- plumbing ---------------------------------------------------------------------

    def _transport(self) -> tuple[GitClient, str]:
        """Build the dulwich client once; it keeps the HTTP connection pool between calls."""
        with self._client_lock:
            return self._build_transport()

    def _build_transport(self) -> tuple[GitClient, str]:
        if self._client is None:
            credentials = self.access.credentials
            if self.url.startswith(("http://", "https://")):
                parsed = urlparse(self.url)
                client = _HttpClient.from_parsedurl(
                    parsed,
                    username=credentials.username if credentials else None,
                    password=credentials.password if credentials else None,
                    pool_manager=http_pool(self.access, base_url=self.url, timeout=self.timeout),
                )
                self._client = (client, parsed.path)
            elif self.access.ssh is not None and is_ssh_url(self.url):
                parsed_client, path = get_transport_and_path(self.url)
                if not isinstance(parsed_client, SSHGitClient):
                    raise PermanentGitError(f"{self.display_url} is not an SSH URL")
                ssh_client = SshGitClient(
                    parsed_client.host,
                    port=parsed_client.port,
                    username=parsed_client.username,
                    identity=self.access.ssh,
                    timeout=self.timeout,
                )
                self._client = (ssh_client, path)
            elif is_ssh_url(self.url):
                raise PermanentGitError(
                    f"{self.display_url} is an SSH URL but its repository has no 'auth.ssh' "
                    "(a private key and the server's known_hosts lines)"
                )
            else:
                location = self.url.removeprefix("file://")
                self._client = get_transport_and_path(location)
        return self._client

    @contextlib.contextmanager
    def _explained(self, client: GitClient) -> Iterator[None]:
        """SSH calls run guarded (see `SshGitClient.guard`); others as they are."""
        if isinstance(client, SshGitClient):
            with client.guard(self.display_url):
                yield
        else:
            yield

    @contextlib.contextmanager
    def _open(self) -> Iterator[Repo]:
        if not (self.path / "HEAD").exists():
            self._init()
        repo = Repo(str(self.path))
        try:
            yield repo
        finally:
            repo.close()

    def _init(self) -> None:
        """Create the bare repository atomically, so a crash never leaves half of one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=".init-"))
        # The layout `git init --bare` makes, written without dulwich's per-file fsync: a
        # cache can be rebuilt, and the fsyncs cost more than the rest of a small fetch.
        for directory in ("objects/pack", "objects/info", "refs/heads", "refs/tags"):
            (staging / directory).mkdir(parents=True)
        (staging / "HEAD").write_bytes(b"ref: refs/heads/main\n")
        (staging / "config").write_bytes(
            b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
        )
        try:
            staging.rename(self.path)
        except OSError:
            if not (self.path / "HEAD").exists():
                raise
            _remove_tree(staging)  # another process won the race; its repository is as good

    def reset_transport(self) -> None:
        """Drop the client and its connections, e.g. after the credentials changed."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            pool = getattr(client[0], "pool_manager", None)
            if pool is not None:
                pool.clear()  # closes the pooled sockets now rather than at garbage collection

    def close(self) -> None:
        self.reset_transport()

    def exists(self) -> bool:
        return (self.path / "HEAD").exists()

    def clear_stale_locks(self) -> list[Path]:
        """Remove lock files a killed process left behind; they would fail every later fetch.

        Only safe because a cache directory belongs to one syncer process (the syncer keeps
        its mirrors under a directory named for its id) and this runs before its first use.
        """
        if not self.path.exists():
            return []
        stale = [p for p in self.path.rglob("*.lock") if p.is_file()]
        for lock in stale:
            lock.unlink(missing_ok=True)
        return stale

    # -- remote operations ----------------------------------------------------------------

    def ls_remote(self) -> dict[str, CommitSha]:
        """Branch heads on the server (`refs/heads/<name>` → sha); no objects are fetched."""
        client, path = self._transport()
        with self._explained(client):
            result = client.get_refs(path.encode() if isinstance(path, str) else path)
        heads: dict[str, CommitSha] = {}
        for name, sha in result.refs.items():
            if sha is not None and name.startswith(_HEADS) and not name.endswith(b"^{}"):
                heads[name.decode("utf-8", "replace")] = CommitSha(sha.decode("ascii"))
        return heads

    def fetch_branch(self, branch: str, *, depth: int | None) -> CommitSha:
        """Fetch `branch` into `refs/heads/<branch>`; `depth` None means incremental."""
        ref = Ref(_HEADS + branch.encode())

        def wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
            if ref not in refs:
                raise MissingBranchError(
                    f"branch {branch} does not exist in {self.display_url}; check the app's branch"
                )
            return [refs[ref]]

        refs = self._fetch(wants, depth=depth, ref_prefix=[ref], skip_present=True)
        head = refs[ref]
        with self._open() as repo:
            repo.refs[ref] = head
        return CommitSha(head.decode("ascii"))

    def deepen(self, branches: Sequence[str], *, depth: int | None) -> None:
        """Fetch more history (or all, with INFINITE_DEPTH) of branches the cache follows."""
        names = {Ref(_HEADS + branch.encode()) for branch in branches}

        def wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
            return sorted({refs[name] for name in names if name in refs})

        with self._open() as repo:
            if not repo.get_shallow():
                depth = None  # nothing to unshallow, and a depth would cut the history we have
        refs = self._fetch(wants, depth=depth, ref_prefix=sorted(names))
        with self._open() as repo:
            for name in names:
                if name in refs:
                    repo.refs[name] = refs[name]

    def _fetch(
        self,
        determine_wants: DetermineWantsFunc,
        *,
        depth: int | None,
        ref_prefix: Sequence[Ref],
        skip_present: bool = False,
    ) -> dict[Ref, ObjectID]:
        """Fetch what `determine_wants` picks; with `skip_present`, a cached want costs one
        ref listing and no pack request."""
        client, path = self._transport()
        with self._open() as repo:
            store = repo.object_store

            def wanted(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
                picked = determine_wants(refs, depth)
                return [sha for sha in picked if sha not in store] if skip_present else picked

            with self._explained(client):
                result = client.fetch(path, repo, wanted, depth=depth, ref_prefix=list(ref_prefix))
            return {name: sha for name, sha in result.refs.items() if sha is not None}

    def merge_packs(self, limit: int = PACK_LIMIT) -> int:
        """Merge the smaller packs into one once there are more than `limit`; returns how
        many were merged (0: nothing to do).

        Geometric, as `git repack --geometric=2`: the smallest packs are merged, up to the
        first one at least twice their size together, so the large pack of the first fetch
        is rarely rewritten and a merge costs about what was fetched since the last one.
        Packs merged are removed, so no other thread may be reading this mirror meanwhile
        (one might be about to open such a pack): `GitCache` runs this alone.
        """
        pack_dir = self.path / "objects" / "pack"
        on_disk = sorted(
            (path.stat().st_size, path.stem.removeprefix("pack-"))
            for path in pack_dir.glob("pack-*.pack")
            if path.with_suffix(".idx").exists()
        )
        if len(on_disk) <= limit:
            return 0
        chosen: set[str] = set()
        total = 0
        for size, name in on_disk:
            if chosen and size >= 2 * total:
                break
            chosen.add(name)
            total += size
        if len(chosen) < 2:
            return 0
        with self._open() as repo:
            store = repo.object_store
            merging = [pack for pack in store.packs if pack.name().decode() in chosen]
            objects = {obj.id: obj for pack in merging for obj in pack.iterobjects()}
            merged = store.add_objects([(obj, None) for obj in objects.values()])
            kept = merged.name().decode() if merged is not None else None
            names = [pack.name().decode() for pack in merging]
        for name in names:
            if name != kept:  # the same objects make the same name: that one stays
                # The index first: dulwich ignores a pack without one.
                (pack_dir / f"pack-{name}.idx").unlink(missing_ok=True)
                (pack_dir / f"pack-{name}.pack").unlink(missing_ok=True)
        return len(names)

    # -- local reads ----------------------------------------------------------------------

    def local_head(self, branch: str) -> CommitSha | None:
        if not self.exists():
            return None
        with self._open() as repo:
            sha = repo.refs.as_dict(_HEADS).get(Ref(branch.encode()))
            return CommitSha(sha.decode("ascii")) if sha is not None else None

    def local_branches(self) -> list[str]:
        if not self.exists():
            return []
        with self._open() as repo:
            return sorted(name.decode() for name in repo.refs.as_dict(_HEADS))

    def is_shallow(self) -> bool:
        if not self.exists():
            return False
        with self._open() as repo:
            return bool(repo.get_shallow())

    def find_commit(self, spec: str) -> CommitSha | None:
        """The full sha of commit `spec` (full or abbreviated) when the cache holds it."""
        text = spec.strip().lower()
        if not (_FULL_SHA.match(text) or _SHORT_SHA.match(text)):
            raise PermanentGitError(f"{spec!r} is not a commit id (expected 4 to 40 hex digits)")
        if not self.exists():
            return None
        with self._open() as repo:
            store = repo.object_store
            if len(text) == 40:
                full = ObjectID(text.encode())
                candidates = [full] if full in store else []
            else:
                candidates = sorted(set(store.iter_prefix(text.encode())))
            commits = [sha for sha in candidates if store.get_raw(sha)[0] == Commit.type_num]
        if len(commits) > 1:
            raise PermanentGitError(
                f"commit id {spec} is ambiguous in {self.display_url}; give more digits"
            )
        return CommitSha(commits[0].decode("ascii")) if commits else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool | None:
        """Whether `ancestor` is reachable from `descendant`; None when history is cut off.

        The common question is whether a newly pushed commit is older than the applied
        one, and its answer is no: walking back from the applied commit alone would read
        the whole cached history before saying so, on every push. So two walks go back a
        commit at a time in turn, one from each end: meeting `ancestor` from `descendant`
        is a yes; meeting `descendant` from `ancestor` is a definite no, since history has
        no cycles (and the only way to a no when a shallow boundary cuts the first walk
        off). The first walk running out without a boundary is a no as well.
        """
        if ancestor == descendant:
            return True
        with self._open() as repo:
            return _ancestry(repo, _oid(ancestor), _oid(descendant), repo.get_shallow())

    def changed_paths(self, before: str, after: str) -> list[str] | None:
        with self._open() as repo:
            old = _commit_or_none(repo, _oid(before))
            new = _commit_or_none(repo, _oid(after))
            if old is None or new is None:
                return None
            paths: set[str] = set()
            for change in tree_changes(repo.object_store, old.tree, new.tree):
                for entry in (change.old, change.new):
                    if entry is not None and entry.path is not None:
                        paths.add(entry.path.decode("utf-8", "surrogateescape"))
            return sorted(paths)

    def read_files(self, commit: str, path: str, max_file_bytes: int) -> dict[str, bytes]:
        with self._open() as repo:
            found = _commit_or_none(repo, _oid(commit))
            if found is None:
                raise PermanentGitError(
                    f"commit {commit} is not in the cache of {self.display_url}; resolve it first"
                )
            reader = TreeReader(repo, found.tree, commit, max_file_bytes)
            return reader.read(path)

    def match_paths(
        self, commit: str, include: list[str], exclude: list[str], *, directories: bool
    ) -> list[str]:
        """Directories (or files) of `commit` that app-set globs match (`syncer.gitglob`)."""
        with self._open() as repo:
            found = _commit_or_none(repo, _oid(commit))
            if found is None:
                raise PermanentGitError(
                    f"commit {commit} is not in the cache of {self.display_url}; resolve it first"
                )
            return match_tree(
                repo.object_store, found.tree, include, exclude, directories=directories
            )

    def commit_signature(self, commit: str) -> tuple[bytes | None, bytes]:
        """The commit's `gpgsig` signature (None when unsigned) and the bytes it signs."""
        with self._open() as repo:
            found = _commit_or_none(repo, _oid(commit))
            if found is None:
                raise PermanentGitError(
                    f"commit {commit} is not in the cache of {self.display_url}; resolve it first"
                )
            signature: bytes | None = found.gpgsig
            return signature, found.raw_without_sig()


class _HttpClient(Urllib3HttpGitClient):
    """dulwich's HTTP client, but an error status releases its connection before raising.

    dulwich raises on 404/401/5xx while the response still holds a pooled socket, which
    then leaks until garbage collection. Raising `HttpStatusError` also hands the status
    to `giterrors.translate` as a number rather than as text to parse.
    """

    def _http_request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        raise_for_status: bool = True,
    ) -> tuple[Any, Callable[[int], bytes]]:
        response, read = super()._http_request(url, headers, data, raise_for_status=False)
        if raise_for_status and response.status != 200:
            status = int(response.status)
            response.close()
            raise HttpStatusError(status)
        return response, read


def http_pool(access: Access, *, base_url: str, timeout: float) -> urllib3.PoolManager:
    """The connection pool for an HTTPS remote: its CA bundle and proxy, or the defaults.

    dulwich lets `https_proxy` in the environment win over a configured proxy, so a
    configured `proxy` gets its own `ProxyManager` here instead.
    """
    import urllib3

    if access.proxy is None:
        config = ConfigDict()
        if access.ca_bundle is not None:
            config.set((b"http",), b"sslCAInfo", access.ca_bundle.encode())
        return cast(
            "urllib3.PoolManager",
            default_urllib3_manager(config, base_url=base_url, timeout=timeout),
        )
    proxy = urlparse(access.proxy)
    headers = None
    if proxy.username:
        userinfo = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        headers = urllib3.util.make_headers(proxy_basic_auth=userinfo)
    bare = proxy._replace(netloc=proxy.netloc.rpartition("@")[2]).geturl()
    return urllib3.ProxyManager(
        bare,
        proxy_headers=headers,
        timeout=timeout,
        cert_reqs="CERT_REQUIRED",
        ca_certs=access.ca_bundle,
        headers={"User-agent": default_user_agent_string()},
    )


def _oid(sha: str) -> ObjectID:
    return ObjectID(sha.encode("ascii"))


def _commit_or_none(repo: Repo, sha: ObjectID) -> Commit | None:
    if sha not in repo.object_store:
        return None
    obj = repo.object_store[sha]
    return obj if isinstance(obj, Commit) else None


class _ParentWalk:
    """Commits reachable from `start` (itself first), one per `next()`, depth first."""

    def __init__(self, repo: Repo, start: ObjectID, shallow: set[ObjectID]) -> None:
        self._store = repo.object_store
        self._shallow = shallow
        self._seen = {start}
        self._todo = [start]
        self.cut_off = False
        """Whether a shallow boundary or a missing commit hid part of the history."""

    @property
    def done(self) -> bool:
        return not self._todo

    def next(self) -> ObjectID:
        sha = self._todo.pop()
        if sha in self._shallow or sha not in self._store:
            self.cut_off = True
            return sha
        commit = self._store[sha]
        if isinstance(commit, Commit):
            for parent in commit.parents:
                if parent not in self._seen:
                    self._seen.add(parent)
                    self._todo.append(parent)
        return sha


def _ancestry(
    repo: Repo, ancestor: ObjectID, descendant: ObjectID, shallow: set[ObjectID]
) -> bool | None:
    """`Mirror.is_ancestor`'s two walks, a step of each in turn until one decides."""
    down = _ParentWalk(repo, descendant, shallow)  # looks for `ancestor`
    up = _ParentWalk(repo, ancestor, shallow)  # looks for `descendant`
    while not (down.done and up.done):
        if not down.done and down.next() == ancestor:
            return True
        if down.done and not down.cut_off:
            return False
        if not up.done and up.next() == descendant:
            return False
    return None


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()
