"""Run a renderer as a child process: bounded in time, killed on timeout or cancel.

Renderers execute code from the commit (Go templates, Kustomize transformers), so they
run outside the worker's event loop and memory: a template that loops forever or a
panic in the tool costs one child process, never the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from syncer.sources.errors import RenderError, RenderTimeout


@dataclass(frozen=True)
class Finished:
    """What a child process left behind."""

    returncode: int
    stdout: bytes
    stderr: bytes


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: no kubeconfig, no credentials, no proxies from the worker."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LANG": "C.UTF-8",
    }
    env.update(extra or {})
    return env


async def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float,
    cwd: Path,
    env: Mapping[str, str],
    stdin: bytes | None = None,
) -> Finished:
    """Run `argv`; raise `RenderTimeout` after `timeout` seconds (the child is killed)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise RenderError(f"cannot start {what} ({argv[0]}): {exc.strerror}") from None
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate(stdin)
    except TimeoutError:
        raise RenderTimeout(
            f"{what} did not finish within {timeout:g}s and was stopped", delay=5.0
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None  # noqa: S101 - communicate() waited for the exit
    return Finished(proc.returncode, stdout, stderr)
