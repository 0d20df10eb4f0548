"""A developer's working copy: commit files with the real `git` CLI and push them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.test",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.test",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


class WorkingCopy:
    """A clone of one served repository that tests change and push like a developer."""

    def __init__(self, path: Path, remote_url: str, branch: str = "main") -> None:
        self.path = path
        self.remote_url = remote_url
        self.branch = branch
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")
        self.git("remote", "add", "origin", remote_url)

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **_ENV},
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def write(self, files: dict[str, str | bytes | None]) -> None:
        """Write (or, with None, delete) files relative to the repository root."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                if target.exists():
                    self.git("rm", "--quiet", "-r", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        self.write(files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, *, force: bool = False, branch: str | None = None) -> None:
        target = branch or self.branch
        args = ["push", "--quiet", "origin", f"HEAD:refs/heads/{target}"]
        if force:
            args.insert(1, "--force")
        self.git(*args)

    def commit_and_push(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        sha = self.commit(files, message)
        self.push()
        return sha

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")
