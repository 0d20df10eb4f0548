"""Find the directories or files of a commit that app-set globs match, without a checkout.

Globs are matched one path segment at a time (`*` never crosses a `/`, names starting
with a dot need a glob starting with one, as in a shell), so a walk only opens the trees
a glob can reach: `apps/*` reads two trees however large the rest of the repository is.
Symlinks and submodules never match: an app's directory is a real directory of the tree.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from dulwich.object_store import BaseObjectStore
from dulwich.objects import ObjectID, Tree


def segments(glob_or_path: str) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(glob_or_path.strip()).parts if p not in ("", "."))


def _segment_matches(name: str, glob: str) -> bool:
    if name.startswith(".") and not glob.startswith("."):
        return False
    return fnmatchcase(name, glob)


def matches(path: str, glob: str) -> bool:
    """Whether `path` is matched by `glob`, segment by segment."""
    names, globs = segments(path), segments(glob)
    return len(names) == len(globs) and all(map(_segment_matches, names, globs))


def within(path: str, glob: str) -> bool:
    """Whether `path` is a match of `glob` or lies inside one (a file of a matched directory)."""
    names, globs = segments(path), segments(glob)
    return len(names) >= len(globs) and all(map(_segment_matches, names, globs))


def match_tree(
    store: BaseObjectStore,
    root: ObjectID,
    include: Iterable[str],
    exclude: Iterable[str] = (),
    *,
    directories: bool,
) -> list[str]:
    """Repository paths of the directories (or files) matched by `include` and no `exclude`."""
    found: set[str] = set()
    for glob in include:
        parts = segments(glob)
        if parts:
            _descend(store, root, (), parts, directories, found)
    excluded = list(exclude)
    return sorted(p for p in found if not any(within(p, g) for g in excluded))


def _descend(
    store: BaseObjectStore,
    tree_sha: ObjectID,
    done: tuple[str, ...],
    rest: tuple[str, ...],
    directories: bool,
    found: set[str],
) -> None:
    tree = store[tree_sha]
    if not isinstance(tree, Tree):
        return
    head, tail = rest[0], rest[1:]
    for entry in tree.items():
        if entry.path is None or entry.mode is None or entry.sha is None:
            continue
        name = entry.path.decode("utf-8", "surrogateescape")
        if not _segment_matches(name, head):
            continue
        is_dir = stat.S_ISDIR(entry.mode)
        if tail:
            if is_dir:
                _descend(store, entry.sha, (*done, name), tail, directories, found)
        elif is_dir if directories else stat.S_ISREG(entry.mode):
            found.add("/".join((*done, name)))
