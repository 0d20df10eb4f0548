"""A smart-HTTP Git server: the real `git http-backend` behind a small aiohttp handler.

`gitops up` serves its example repository with it, and the test bench serves the
repositories that tests push to with the `git` CLI and fetch with dulwich.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from aiohttp import web

from gitops.broker import free_port


class GitServerError(Exception):
    """The git server could not serve a request or create a repository."""


class GitHttpServer:
    """Serve every bare repository under `root` at `http://host:port/<name>.git`, push included."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        if shutil.which("git") is None:
            raise GitServerError("the git CLI is not installed (Debian: apt-get install git)")
        self.root = root
        self.host = host
        self.port = port or free_port(host)
        self.requests = 0
        """Requests served so far; tests count git traffic with it."""
        self.request_log: list[tuple[str, str]] = []
        """(method, path?query) of every request, oldest first."""
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{name}.git"

    def create_repo(self, name: str, *, default_branch: str = "main") -> Path:
        """Create an empty bare repository that accepts pushes over HTTP."""
        path = self.root / f"{name}.git"
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
            check=True,
        )
        subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
        return path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.request_log.append((request.method, request.path_qs))
        body = await request.read()
        env = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": request.path,
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": request.remote or "127.0.0.1",
            "REMOTE_USER": "gitops",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        if "Content-Encoding" in request.headers:
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        if "Git-Protocol" in request.headers:
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        stdout, stderr = await process.communicate(body)
        head, _, payload = stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = stdout.partition(b"\n\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers[key.strip()] = value.strip()
        if process.returncode and not stdout:
            return web.Response(status=500, text=stderr.decode(errors="replace"))
        return web.Response(status=status, body=payload, headers=headers)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    async def __aenter__(self) -> GitHttpServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
