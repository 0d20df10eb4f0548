"""GitHub App installation tokens: a JWT signed with the app's key, exchanged for a token.

GitHub's flow (docs.github.com, "Authenticating as a GitHub App installation"): the app
signs a JWT with RS256 (`iss` = app ID, `iat` a minute in the past against clock drift,
`exp` at most ten minutes later) and POSTs it to
`/app/installations/{installation_id}/access_tokens`, which answers 201 with a `token`
and its `expires_at`, an hour away. Tokens are cached per installation and minted again
`refresh_margin` before they expire, or at once when a git host refuses one (401), so a
revoked token costs one failed request. Neither the JWT nor the token is ever logged or
put in an error message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr

from schemas.config import GitHubAppAuth
from schemas.keys import KeyProblem, load_app_private_key

API_VERSION = "2022-11-28"
"""The `X-GitHub-Api-Version` whose description the request follows."""
JWT_LIFETIME = 540.0
"""Seconds a JWT is valid: under GitHub's ten-minute limit even with a minute of drift."""


class GitHubAppError(Exception):
    """An installation token could not be minted; `transient` says whether waiting can help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def app_jwt(app_id: int | str, key: rsa.RSAPrivateKey, *, now: float) -> str:
    """The RS256 JWT that authenticates the app itself (not an installation)."""
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iat": int(now) - 60, "exp": int(now + JWT_LIFETIME), "iss": str(app_id)}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


@dataclass(frozen=True)
class _Minted:
    token: SecretStr
    expires_at: float


class InstallationTokens:
    """Mints and caches installation tokens; an async context manager (its HTTP session)."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._cache: dict[tuple[str, int], _Minted] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None
        self.minted = 0
        """Tokens minted so far (tests and metrics)."""

    async def __aenter__(self) -> InstallationTokens:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session; safe to call more than once."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def token(
        self, app: GitHubAppAuth, *, ca_bundle: str | None = None, proxy: str | None = None
    ) -> SecretStr:
        """A token valid for at least `refresh_margin` more seconds, minted when needed."""
        key = (app.api_url.rstrip("/"), app.installation_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached.expires_at - self.refresh_margin > self._clock():
                return cached.token
            minted = await self._mint(app, ca_bundle=ca_bundle, proxy=proxy)
            self._cache[key] = minted
            return minted.token

    def invalidate(self, app: GitHubAppAuth) -> bool:
        """Forget the cached token (a host refused it); whether there was one to forget."""
        return self._cache.pop((app.api_url.rstrip("/"), app.installation_id), None) is not None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def _mint(
        self, app: GitHubAppAuth, *, ca_bundle: str | None, proxy: str | None
    ) -> _Minted:
        where = f"GitHub App {app.app_id} installation {app.installation_id} at {app.api_url}"
        try:
            key = load_app_private_key(app.private_key.resolve().get_secret_value())
        except (KeyProblem, ValueError) as exc:
            raise GitHubAppError(f"{where}: private_key: {exc}", transient=False) from None
        url = f"{app.api_url.rstrip('/')}/app/installations/{app.installation_id}/access_tokens"
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {app_jwt(app.app_id, key, now=self._clock())}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "gitops-pipeline",
        }
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        try:
            async with self._http().post(url, headers=headers, ssl=context, proxy=proxy) as answer:
                status = answer.status
                body = await answer.read()
        except aiohttp.ClientConnectorCertificateError:
            raise GitHubAppError(
                f"{where}: the API's TLS certificate is not trusted; if a private CA signs "
                "it, set auth.ca_bundle to that CA's PEM file",
                transient=False,
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = type(exc).__name__ if not isinstance(exc, TimeoutError) else "timed out"
            raise GitHubAppError(
                f"{where}: cannot reach the API ({reason})", transient=True
            ) from None
        if status != 201:
            raise _refusal(where, status, body)
        try:
            data = json.loads(body)
            token = str(data["token"])
            expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            raise GitHubAppError(
                f"{where}: the API answered 201 without a token and its expiry", transient=True
            ) from None
        self.minted += 1
        return _Minted(SecretStr(token), expires.timestamp())


def _refusal(where: str, status: int, body: bytes) -> GitHubAppError:
    message = ""
    with contextlib.suppress(ValueError, AttributeError):
        message = str(json.loads(body).get("message", ""))[:200]
    said = f" ({message})" if message else ""
    if status == 401:
        return GitHubAppError(
            f"{where}: the API refused the app's JWT (401{said}); check app_id and that "
            "private_key is the app's current key",
            transient=False,
        )
    if status in (403, 404):
        return GitHubAppError(
            f"{where}: the API answered {status}{said}; check installation_id and that the "
            "app is installed on the repository's owner",
            transient=False,
        )
    transient = status == 429 or status >= 500
    return GitHubAppError(f"{where}: the API answered {status}{said}", transient=transient)
