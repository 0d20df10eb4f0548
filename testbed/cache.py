"""Where built parts live between runs: one folder per part and version.

A part is built into a scratch folder beside its final place and renamed into place only
when the build finished, so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """`$GITOPS_TESTBED_CACHE`, else `~/.cache/gitops-pipeline/testbed`."""
    configured = os.environ.get("GITOPS_TESTBED_CACHE")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "gitops-pipeline" / "testbed"


@contextmanager
def building(final: Path) -> Iterator[Path]:
    """A scratch folder that becomes `final` only if the body finishes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = final.with_name(f"{final.name}.building-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if final.exists():  # another process finished the same build first
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        scratch.rename(final)
