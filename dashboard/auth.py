"""Who may look: anyone on the machine when bound to loopback, token holders otherwise.

A dashboard shows which apps exist, where they deploy and what failed: useful to an
attacker, so listening beyond 127.0.0.1 needs `ui.token`. The token is accepted as
`Authorization: Bearer <token>` (scripts, proxies) or as the cookie the sign-in form
sets (browsers: an EventSource cannot send headers). The cookie holds an HMAC of the
token, not the token; both are compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

COOKIE = "gitops_ui"
OPEN_PATHS = frozenset({"/healthz", "/login", "/static/dashboard.css", "/static/favicon.svg"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenRequired(Exception):
    """Listening beyond loopback without `ui.token`: refused before anything starts."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, *, source: str) -> None:
    if token is None and not is_loopback(host):
        raise TokenRequired(
            f"{source}: ui.token: required to listen on {host} (any address but loopback);"
            " set e.g. `ui: {token: {env: GITOPS_UI_TOKEN}}`, or use --host 127.0.0.1"
        )


def session_value(token: str) -> str:
    """What the sign-in cookie holds: proof of the token without the token itself."""
    return hmac.new(token.encode(), b"gitops-ui-session", hashlib.sha256).hexdigest()


def authorised(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def token_middleware(
    token: str, login_page: Callable[[bool], str]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or authorised(request, token):
            return await handler(request)
        headers = {"WWW-Authenticate": 'Bearer realm="gitops-ui"'}
        if "text/html" in request.headers.get("Accept", ""):
            return web.Response(
                status=401, text=login_page(False), content_type="text/html", headers=headers
            )
        return web.Response(status=401, text="401: a bearer token is required\n", headers=headers)

    return guard


async def sign_in(
    request: web.Request, token: str, login_page: Callable[[bool], str]
) -> web.StreamResponse:
    form = await request.post()
    given = str(form.get("token", ""))
    if not hmac.compare_digest(given.encode(), token.encode()):
        return web.Response(status=401, text=login_page(True), content_type="text/html")
    response = web.Response(status=303, headers={"Location": "/"})
    response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="Strict", path="/")
    return response
