"""A checkout-free snapshot: the files of one commit written to a private temporary dir.

Kustomize and Helm read directories, while the git cache hands out a commit's files as
bytes without a checkout. A snapshot writes those bytes under the worker's cache dir
(never elsewhere: the cache dir is the one place the worker may fill) and removes them
again, so concurrent syncs of different commits never see each other's files and no
working tree has to be kept in step with a branch.

Only regular files are written, with paths checked to stay inside the snapshot, so a
renderer started in it cannot follow a link out of the commit.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType

from syncer.sources.errors import SourceRefused

DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
"""Upper bound of one snapshot on disk; a repository larger than this is refused."""


def safe_relative(path: str) -> PurePosixPath:
    """`path` as a relative posix path that cannot leave the directory it is joined to."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or any(p in ("..", "") for p in pure.parts):
        raise SourceRefused(f"path {path!r} in the commit escapes the repository; refusing it")
    return pure


class Snapshot:
    """`async with Snapshot(files, parent=cache_dir / "snapshots") as s:`, then `s.root`."""

    def __init__(
        self,
        files: Mapping[str, bytes],
        *,
        parent: Path,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self._files = files
        self._parent = parent
        self._max_total_bytes = max_total_bytes
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        """The directory holding the commit's files (the repository root)."""
        if self._root is None:
            raise RuntimeError("the snapshot is not open: use `async with Snapshot(...)`")
        return self._root

    async def open(self) -> Path:
        """Write the files; on any failure nothing is left behind."""
        if self._root is not None:
            return self._root
        total = sum(len(data) for data in self._files.values())
        if total > self._max_total_bytes:
            raise SourceRefused(
                f"the commit's files total {total:,} bytes, over the snapshot limit of "
                f"{self._max_total_bytes:,} bytes"
            )
        checked = {safe_relative(path): data for path, data in self._files.items()}
        self._root = await asyncio.to_thread(self._write, checked)
        return self._root

    def _write(self, files: Mapping[PurePosixPath, bytes]) -> Path:
        self._parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="snapshot-", dir=self._parent)).resolve()
        try:
            for rel, data in files.items():
                target = root.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return root

    async def close(self) -> None:
        """Remove the snapshot; safe to call more than once."""
        root, self._root = self._root, None
        if root is not None:
            await asyncio.to_thread(shutil.rmtree, root, True)

    async def __aenter__(self) -> Snapshot:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
