"""A fake GitHub REST API at the network boundary: installation tokens for one GitHub App.

It answers `POST /app/installations/{installation_id}/access_tokens` only, and checks
every request against what GitHub publishes (the operation copied from
github/rest-api-description into tests/auth/data, with its provenance): the path
template, the request body schema, the headers GitHub's docs ask for, and a JWT that is
RS256-signed by the app's key with the claims GitHub requires (`iss` the app, `iat` in
the past, `exp` at most ten minutes after `iat`). Its own 201 answers are validated
against the published `installation-token` schema before they are sent.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from openapi_schema_validator import OAS30Validator

from gitops.broker import free_port
from tests.support.serving import serve

DESCRIPTION = (
    Path(__file__).resolve().parents[1]
    / "auth"
    / "data"
    / ("github-create-installation-access-token.json")
)


def _published() -> dict[str, Any]:
    return json.loads(DESCRIPTION.read_text())  # type: ignore[no-any-return]


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class Exchange:
    """One token request as the fake API saw it."""

    installation_id: int
    claims: dict[str, Any]
    headers: dict[str, str]
    token: str | None
    """What was minted (None when refused)."""


@dataclass
class FakeGitHubApi:
    """Serves the operation for one app (`app_id`, its public key) over HTTPS or HTTP."""

    app_id: int
    public_key: rsa.RSAPublicKey
    installation_id: int
    tls: tuple[Path, Path] | None = None
    """(certificate, key) to serve HTTPS with; plain HTTP when None."""
    token_lifetime: float = 3600.0
    port: int = field(default_factory=free_port)
    exchanges: list[Exchange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Every way a request departed from the description (the test asserts it is empty)."""
    valid_tokens: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        """The operation, for a server of the caller's own (a fake API beside it)."""
        return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.Response:
        published = _published()
        match = _template_regex(published["path"]).match(request.path)
        if request.method.lower() != published["method"] or match is None:
            self.problems.append(f"{request.method} {request.path} is not the operation")
            return _error(404, "Not Found")
        raw_id = match.group("installation_id")
        if not raw_id.isdigit():
            self.problems.append(f"installation_id {raw_id!r} is not an integer")
            return _error(404, "Not Found")
        self._check_headers(request)
        body = await request.read()
        if body:
            self._check_body(published, body)
        claims = self._verified_claims(request.headers.get("Authorization", ""))
        headers = dict(request.headers)
        if claims is None:
            self.exchanges.append(Exchange(int(raw_id), {}, headers, None))
            return _error(401, "A JSON web token could not be decoded")
        if int(raw_id) != self.installation_id:
            self.exchanges.append(Exchange(int(raw_id), claims, headers, None))
            return _error(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=self.token_lifetime
        )
        answer = {
            "token": token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "repository_selection": "all",
        }
        self._check_response(published, answer)
        self.valid_tokens.add(token)
        self.exchanges.append(Exchange(int(raw_id), claims, headers, token))
        return web.json_response(answer, status=201)

    def _check_headers(self, request: web.Request) -> None:
        if request.headers.get("Accept") != "application/vnd.github+json":
            self.problems.append(f"Accept is {request.headers.get('Accept')!r}")
        version = request.headers.get("X-GitHub-Api-Version")
        if version not in (None, "2022-11-28"):
            self.problems.append(f"X-GitHub-Api-Version {version!r} is not the described one")
        if not request.headers.get("User-Agent"):
            self.problems.append("no User-Agent (GitHub refuses requests without one)")

    def _check_body(self, published: dict[str, Any], body: bytes) -> None:
        content = published["operation"]["requestBody"]["content"]["application/json"]
        try:
            instance = json.loads(body)
        except ValueError:
            self.problems.append("the request body is not JSON")
            return
        if isinstance(instance, dict) and "permissions" in instance:
            self.problems.append("permissions sent (app-permissions is not in the test data)")
        for error in OAS30Validator(content["schema"]).iter_errors(instance):
            self.problems.append(f"request body: {error.message}")

    def _check_response(self, published: dict[str, Any], answer: dict[str, Any]) -> None:
        schema = {
            "$ref": published["operation"]["responses"]["201"]["content"]["application/json"][
                "schema"
            ]["$ref"],
            "components": published["components"],
        }
        for error in OAS30Validator(schema).iter_errors(answer):
            raise AssertionError(f"the fake's own answer breaks the schema: {error.message}")

    def _verified_claims(self, authorization: str) -> dict[str, Any] | None:
        if not authorization.startswith("Bearer "):
            self.problems.append("no Bearer JWT in Authorization")
            return None
        parts = authorization.removeprefix("Bearer ").split(".")
        if len(parts) != 3:
            self.problems.append("the bearer token is not a JWT")
            return None
        header, claims = json.loads(_b64(parts[0])), json.loads(_b64(parts[1]))
        if header.get("alg") != "RS256":
            self.problems.append(f"JWT alg {header.get('alg')!r}, GitHub wants RS256")
            return None
        try:
            self.public_key.verify(
                _b64(parts[2]),
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return None  # not the app's key: GitHub answers 401, and so do we
        now = time.time()
        if str(claims.get("iss")) != str(self.app_id):
            return None
        if not (claims.get("iat", now + 1) <= now < claims.get("exp", 0)):
            self.problems.append(
                f"JWT not valid now: iat {claims.get('iat')} exp {claims.get('exp')}"
            )
            return None
        if claims["exp"] - claims["iat"] > 600:
            self.problems.append("JWT lives longer than GitHub's 10 minutes")
            return None
        return dict(claims)

    async def __aenter__(self) -> FakeGitHubApi:
        self._runner = await serve(self._handle, self.port, tls=self.tls)
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


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"message": message, "documentation_url": "https://docs.github.com/rest"}, status=status
    )
