"""The local stack's notification endpoint: a webhook receiver that prints what it is sent.

`gitops up` points a `webhook` rule at it, so a newcomer sees a notification arrive (and
the signature it carries checked) next to the sync events, without a chat account.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from gitops.broker import free_port

PATH = "/notifications"
SIGNATURE_HEADER = "X-Gitops-Signature-256"


class NotificationPrinter:
    """Serves `POST /notifications` on 127.0.0.1 and prints one line per notification."""

    def __init__(self, secret: str, say: Callable[[str], None]) -> None:
        self._secret = secret.encode()
        self._say = say
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected)
        try:
            event = json.loads(body)
            data = event.get("data", {})
            line = (
                f"notification  {event.get('type')} for {data.get('app')}"
                f" at {str(data.get('commit') or '-')[:7]}"
            )
        except (ValueError, AttributeError):
            line = f"notification  {len(body)} bytes that are not a CloudEvent"
        rule = request.headers.get("X-Gitops-Rule", "?")
        self._say(f"{line}  (rule {rule}, signature {'ok' if signed else 'WRONG'})")
        return web.Response(status=204 if signed else 401)

    async def __aenter__(self) -> NotificationPrinter:
        app = web.Application()
        app.router.add_post(PATH, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
