"""Kustomize sources: render an overlay with the real Kustomize (`kubectl kustomize`).

Before Kustomize runs, every kustomization the app's one reaches is read and its
`resources`, `bases`, `components`, `generators`, `transformers` and `validators` are
checked: a URL (`https://`, `git::`, `github.com/...`) is refused unless the app allows
remote bases — a remote base is not pinned by the commit, so the same commit could
render differently tomorrow, and fetching it is network access the worker should not do
on a push's behalf — and a local path may not leave the repository. Kustomize then runs
with its default root-only load restrictor, no plugins, no Helm inflation.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path, PurePosixPath

import yaml

from syncer.sources.detect import KUSTOMIZATION_FILES, app_prefix
from syncer.sources.errors import RenderError, SourceRefused
from syncer.sources.process import child_env, run

KUBECTL = "kubectl"
REFERENCE_FIELDS = ("resources", "bases", "components", "generators", "transformers", "validators")
"""Kustomization fields whose string entries name other files, directories or URLs."""

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_PATH = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?/")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def is_remote(entry: str, exists_locally: bool) -> bool:
    """Whether Kustomize would fetch `entry` over the network.

    Kustomize tries a local path first, so `github.com/x` is remote only when no such
    directory exists in the commit; scheme and `git::`/`git@` forms are always remote.
    """
    if _SCHEME.match(entry) or entry.startswith(("git::", "git@", "ssh:")):
        return True
    return not exists_locally and bool(_HOST_PATH.match(entry))


def _kustomization_in(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def check_references(root: Path, app_dir: str, *, allow_remote_bases: bool) -> None:
    """Walk the kustomizations reachable from `app_dir`; refuse remote or escaping entries."""
    root = root.resolve()
    start = root / app_prefix(app_dir)
    pending, seen = [start], set[Path]()
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        kfile = _kustomization_in(directory)
        if kfile is None:
            continue
        shown = kfile.relative_to(root).as_posix()
        try:
            data = yaml.load(kfile.read_bytes(), Loader=_LOADER)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            continue  # Kustomize reports the syntax error in its own words.
        if not isinstance(data, dict):
            continue
        for field in REFERENCE_FIELDS:
            entries = data.get(field)
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if not isinstance(entry, str):
                    continue
                target = Path(os.path.normpath(directory / entry))
                inside = target == root or root in target.parents
                if is_remote(entry, inside and target.exists()):
                    if allow_remote_bases:
                        continue
                    raise SourceRefused(
                        f"{shown}: {field} entry {entry!r} is a remote base; remote bases are "
                        "not pinned by the commit and need the network, so they are refused "
                        "(vendor it into the repository, or set kustomize.allow_remote_bases: "
                        "true on the app)"
                    )
                if not inside:
                    raise SourceRefused(
                        f"{shown}: {field} entry {entry!r} points outside the repository"
                    )
                if target.is_dir():
                    pending.append(target)


def _prepare(root: Path, app_dir: str, allow_remote_bases: bool) -> tuple[Path, Path, str]:
    root = root.resolve()
    shown = PurePosixPath(app_prefix(app_dir) or ".").as_posix()
    directory = root / shown
    if _kustomization_in(directory) is None:
        raise RenderError(
            f"{shown}: no kustomization file (expected one of {', '.join(KUSTOMIZATION_FILES)})"
        )
    check_references(root, app_dir, allow_remote_bases=allow_remote_bases)
    return root, directory, shown


async def render_kustomize(
    root: Path,
    app_dir: str,
    *,
    allow_remote_bases: bool = False,
    timeout: float = 60.0,
    kubectl: str = KUBECTL,
) -> bytes:
    """The YAML stream `kubectl kustomize` builds for `app_dir` of the snapshot at `root`.

    Raises `SourceRefused` for remote or escaping references, `RenderError` with
    Kustomize's own message (snapshot paths made repo-relative) when it fails.
    """
    root, directory, shown = await asyncio.to_thread(_prepare, root, app_dir, allow_remote_bases)
    argv = [kubectl, "kustomize", str(directory), "--load-restrictor=LoadRestrictionsRootOnly"]
    finished = await run(argv, what="kustomize", timeout=timeout, cwd=root, env=child_env(root))
    if finished.returncode != 0:
        message = finished.stderr.decode("utf-8", "replace").strip()
        message = message.replace(f"{root}/", "").replace(str(root), ".")
        raise RenderError(f"kustomize build {shown} failed: {message}")
    return finished.stdout
