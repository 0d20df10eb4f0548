"""An HTTPS git host in front of the real `git http-backend`: TLS and basic auth.

It terminates TLS with a certificate of the test's own CA (so clients must be given
that CA) and lets a request through only with one of `accepted` passwords as HTTP basic
auth, the way GitHub takes `x-access-token:<installation token>`; everything else goes
to the `GitHttpServer` behind it unchanged.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import aiohttp
from aiohttp import web

from gitops.broker import free_port
from tests.support.serving import serve

_FORWARDED = ("Content-Type", "Git-Protocol", "Content-Encoding", "Accept")


@dataclass
class TokenGitFront:
    upstream: str
    certificate: Path
    key: Path
    username: str
    accepted: set[str] = field(default_factory=set)
    port: int = field(default_factory=free_port)
    refused: int = 0
    """Requests answered 401 so far."""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _allowed(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.username and password in self.accepted

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._allowed(request.headers.get("Authorization")):
            self.refused += 1
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="git"'})
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as http,
            http.request(
                request.method,
                self.upstream + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            body = await answer.read()
            kept = {"Content-Type": answer.headers.get("Content-Type", "")}
            return web.Response(status=answer.status, body=body, headers=kept)

    async def __aenter__(self) -> TokenGitFront:
        self._runner = await serve(self._handle, self.port, tls=(self.certificate, self.key))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
