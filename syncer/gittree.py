"""Read the files under one directory of a commit straight from the object store.

No checkout: trees are walked in the bare repository. Symlinks are followed the way a
checkout would resolve them, but only while their target stays inside the repository;
a link or an app path that could leave it raises `UnsafePathError`, a file over the size
limit raises `FileTooLargeError` (checked on the object's length before it is decoded),
and submodules (gitlinks, whose commits live in another repository) are skipped.
"""

from __future__ import annotations

import stat
from pathlib import PurePosixPath

from dulwich.objects import S_ISGITLINK, Blob, ObjectID, Tree
from dulwich.repo import Repo

from syncer.giterrors import FileTooLargeError, PermanentGitError, UnsafePathError

_MAX_SYMLINK_HOPS = 40  # what Linux allows before ELOOP


def short(sha: str) -> str:
    return sha[:7]


def _clean_path(path: str) -> tuple[str, ...]:
    """The parts of an app path inside the repository; refuses anything that could leave it."""
    text = path.strip()
    pure = PurePosixPath(text)
    if text.startswith("/") or pure.is_absolute() or "\\" in text or ".." in pure.parts:
        raise UnsafePathError(
            f"path {path!r} must be relative to the repository root and must not contain '..'"
        )
    return tuple(part for part in pure.parts if part not in ("", "."))


class TreeReader:
    """Collects the blobs under one directory of one commit, following safe symlinks."""

    def __init__(self, repo: Repo, root_tree: ObjectID, commit: str, max_file_bytes: int) -> None:
        self._store = repo.object_store
        self._root = root_tree
        self._commit = commit
        self._max = max_file_bytes
        self._files: dict[str, bytes] = {}

    def read(self, path: str) -> dict[str, bytes]:
        parts = _clean_path(path)
        where = "/".join(parts) or "."
        located = self._lookup(parts, link_hops=0)
        if located is None:
            raise PermanentGitError(f"path {where} does not exist in commit {short(self._commit)}")
        mode, sha, real = located
        if stat.S_ISDIR(mode):
            self._walk(sha, parts, real, visiting=frozenset())
        elif not S_ISGITLINK(mode):
            self._add(parts, sha)
        return dict(sorted(self._files.items()))

    def _tree(self, sha: ObjectID) -> Tree:
        obj = self._store[sha]
        if not isinstance(obj, Tree):
            raise PermanentGitError(f"object {sha.decode()} is not a tree in commit {self._commit}")
        return obj

    def _lookup(
        self, parts: tuple[str, ...], link_hops: int
    ) -> tuple[int, ObjectID, tuple[str, ...]] | None:
        """Find `parts` from the root, resolving symlinks; returns (mode, sha, real parts)."""
        mode, sha = stat.S_IFDIR, self._root
        done: tuple[str, ...] = ()
        for index, name in enumerate(parts):
            if not stat.S_ISDIR(mode):
                return None
            entries = {entry.path: entry for entry in self._tree(sha).items()}
            entry = entries.get(name.encode("utf-8", "surrogateescape"))
            if entry is None or entry.mode is None or entry.sha is None:
                return None
            mode, sha = entry.mode, entry.sha
            if stat.S_ISLNK(mode):
                if link_hops >= _MAX_SYMLINK_HOPS:
                    raise PermanentGitError(
                        f"symlink {'/'.join((*done, name))} is part of a loop in commit "
                        f"{short(self._commit)}"
                    )
                target = self._link_target(done, name, sha)
                found = self._lookup(target + parts[index + 1 :], link_hops + 1)
                return found
            done = (*done, name)
        return mode, sha, done

    def _link_target(self, directory: tuple[str, ...], name: str, sha: ObjectID) -> tuple[str, ...]:
        """Where a symlink points, as parts from the root; refuses targets outside the repo."""
        link = "/".join((*directory, name))
        blob = self._store[sha]
        raw = blob.data if isinstance(blob, Blob) else b""
        target = raw.decode("utf-8", "surrogateescape")
        if target.startswith("/"):
            raise UnsafePathError(
                f"symlink {link} points outside the repository (to {target}); "
                "only links inside the repository are followed"
            )
        resolved: list[str] = list(directory)
        for part in PurePosixPath(target).parts:
            if part == "..":
                if not resolved:
                    raise UnsafePathError(
                        f"symlink {link} points outside the repository (to {target}); "
                        "only links inside the repository are followed"
                    )
                resolved.pop()
            elif part not in ("", "."):
                resolved.append(part)
        return tuple(resolved)

    def _walk(
        self,
        tree_sha: ObjectID,
        shown: tuple[str, ...],
        real: tuple[str, ...],
        visiting: frozenset[tuple[str, ...]],
    ) -> None:
        """Add every blob below a directory; `shown` is the path users see, `real` its target."""
        if real in visiting:
            raise PermanentGitError(
                f"symlink loop: {'/'.join(shown)} leads back into {'/'.join(real) or '.'} "
                f"in commit {short(self._commit)}"
            )
        visiting = visiting | {real}
        for entry in self._tree(tree_sha).items():
            if entry.path is None or entry.mode is None or entry.sha is None:
                continue
            name = entry.path.decode("utf-8", "surrogateescape")
            if name in ("", ".", "..") or "/" in name or "\0" in name:
                # git never writes such entries (fsck and checkout refuse them); a pushed
                # tree carrying one is hostile, and its paths would not mean what they say.
                raise UnsafePathError(
                    f"tree entry {'/'.join((*shown, name))!r} in commit {short(self._commit)} "
                    "is not a valid file name ('.', '..' and names containing '/' are refused)"
                )
            if S_ISGITLINK(entry.mode):
                continue  # a submodule: its commit is in another repository
            if stat.S_ISDIR(entry.mode):
                self._walk(entry.sha, (*shown, name), (*real, name), visiting)
            elif stat.S_ISLNK(entry.mode):
                target = self._link_target(real, name, entry.sha)
                found = self._lookup(target, link_hops=1)
                if found is None:
                    continue  # a dangling link carries no content, as in a checkout
                mode, sha, target_real = found
                if stat.S_ISDIR(mode):
                    self._walk(sha, (*shown, name), target_real, visiting)
                elif not S_ISGITLINK(mode):
                    self._add((*shown, name), sha)
            else:
                self._add((*shown, name), entry.sha)

    def _add(self, parts: tuple[str, ...], sha: ObjectID) -> None:
        name = "/".join(parts)
        type_num, raw = self._store.get_raw(sha)
        if len(raw) > self._max:
            raise FileTooLargeError(
                f"file {name} is {len(raw)} bytes in commit {short(self._commit)}, over the "
                f"limit of {self._max} bytes"
            )
        if type_num != Blob.type_num:
            raise PermanentGitError(f"{name} is not a file in commit {short(self._commit)}")
        self._files[name] = raw
