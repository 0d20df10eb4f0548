"""A repository fetched as a GitHub App installation, over HTTPS signed by a private CA.

The GitHub API is the only fake (tests/support/githubapi.py, checked against GitHub's
published description of the operation); the git host is the real `git http-backend`
behind an HTTPS front that takes `x-access-token:<token>` only for tokens that API
minted. The CA is the test's own, so every connection also proves `ca_bundle` is used.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from credentials import HostCredentials
from gitops.gitserver import GitHttpServer
from schemas.config import RepositoryConfig
from syncer.gitcache import GitCache, PermanentGitError
from testbed.pki import Pki, make_pki
from tests.support.connectproxy import ConnectProxy
from tests.support.git import WorkingCopy
from tests.support.gitfront import TokenGitFront
from tests.support.githubapi import FakeGitHubApi

APP_ID = 424242
INSTALLATION_ID = 98765


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def api(app_key: rsa.RSAPrivateKey, pki: Pki) -> AsyncIterator[FakeGitHubApi]:
    fake = FakeGitHubApi(
        APP_ID, app_key.public_key(), INSTALLATION_ID, tls=(pki.apiserver.cert, pki.apiserver.key)
    )
    async with fake:
        yield fake
    assert not fake.problems, fake.problems  # every request followed the description


@pytest.fixture
async def front(
    git_server: GitHttpServer, api: FakeGitHubApi, pki: Pki
) -> AsyncIterator[TokenGitFront]:
    host = TokenGitFront(
        git_server.url,
        pki.apiserver.cert,
        pki.apiserver.key,
        username="x-access-token",
        accepted=api.valid_tokens,  # the tokens the API minted, and only while they are valid
    )
    async with host:
        yield host


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[GitCache]:
    async with GitCache(tmp_path / "cache", timeout=20) as opened:
        yield opened


@dataclass
class World:
    """The fake API, the HTTPS git host in front of the real server, the CA and the cache."""

    api: FakeGitHubApi
    front: TokenGitFront
    pki: Pki
    key: rsa.RSAPrivateKey
    cache: GitCache

    def repo(self, key: rsa.RSAPrivateKey | None = None, **auth: Any) -> RepositoryConfig:
        """The repository as a user configures it for the app (signed with `key`)."""
        return RepositoryConfig.model_validate(
            {
                "url": f"{self.front.url}/platform.git",
                "auth": {
                    "github_app": {
                        "app_id": APP_ID,
                        "installation_id": INSTALLATION_ID,
                        "private_key": {"value": pem(key or self.key)},
                        "api_url": self.api.url,
                    },
                    "ca_bundle": {"file": str(self.pki.ca.cert)},
                    **auth,
                },
            }
        )


@pytest.fixture
def world(
    api: FakeGitHubApi, front: TokenGitFront, pki: Pki, app_key: rsa.RSAPrivateKey, cache: GitCache
) -> World:
    return World(api, front, pki, app_key, cache)


MakeCopy = Callable[..., WorkingCopy]


async def test_fetch_with_an_installation_token_minted_once_and_cached(
    working_copy: MakeCopy,
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wc = working_copy("platform")
    first = wc.commit_and_push({"apps/cm.yaml": "kind: ConfigMap\n"})
    repo = world.repo()

    assert await world.cache.resolve(repo, "main") == first
    second = wc.commit_and_push({"apps/cm.yaml": "kind: ConfigMap\ndata: {}\n"})
    assert await world.cache.ls_remote(repo) == {"refs/heads/main": second}
    assert await world.cache.resolve(repo, "main") == second

    assert len(world.api.exchanges) == 1, "one token serves every call until it is due"
    exchange = world.api.exchanges[0]
    assert exchange.installation_id == INSTALLATION_ID
    assert exchange.claims["iss"] == str(APP_ID)
    assert exchange.token is not None
    jwt = exchange.headers["Authorization"].removeprefix("Bearer ")
    for secret in (exchange.token, jwt):
        assert secret not in caplog.text


async def test_a_token_close_to_expiry_is_minted_again(
    working_copy: MakeCopy,
    world: World,
) -> None:
    world.api.token_lifetime = 120  # already inside the five minutes before expiry
    head = working_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    repo = world.repo()

    assert await world.cache.ls_remote(repo) == {"refs/heads/main": head}
    assert await world.cache.ls_remote(repo) == {"refs/heads/main": head}

    assert len(world.api.exchanges) == 2
    assert world.api.exchanges[0].token != world.api.exchanges[1].token


async def test_a_revoked_token_is_replaced_after_one_401(
    working_copy: MakeCopy,
    world: World,
) -> None:
    wc = working_copy("platform")
    wc.commit_and_push({"a.yaml": "a: 1\n"})
    repo = world.repo()
    await world.cache.resolve(repo, "main")

    world.api.valid_tokens.clear()  # revoked on GitHub's side, an hour early
    refused_before = world.front.refused
    second = wc.commit_and_push({"a.yaml": "a: 2\n"})

    assert await world.cache.resolve(repo, "main") == second
    assert world.front.refused == refused_before + 1
    assert len(world.api.exchanges) == 2


async def test_a_key_that_is_not_the_apps_is_a_clear_permanent_error(
    working_copy: MakeCopy,
    world: World,
) -> None:
    working_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(PermanentGitError, match=r"refused the app's JWT \(401") as caught:
        await world.cache.resolve(world.repo(stranger), "main")

    assert f"GitHub App {APP_ID} installation {INSTALLATION_ID}" in str(caught.value)
    assert world.front.refused == 0  # the git host was never tried without a token


async def test_without_the_private_ca_the_certificate_is_not_trusted(
    working_copy: MakeCopy,
    world: World,
) -> None:
    working_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    repo = world.repo()
    assert repo.auth is not None
    untrusting = repo.model_copy(update={"auth": repo.auth.model_copy(update={"ca_bundle": None})})

    with pytest.raises(PermanentGitError, match="certificate") as caught:
        await world.cache.resolve(untrusting, "main")

    assert "ca_bundle" in str(caught.value)
    assert not world.api.exchanges


async def test_token_and_fetch_go_through_the_configured_proxy(
    working_copy: MakeCopy,
    world: World,
) -> None:
    head = working_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    async with ConnectProxy(credentials=("proxyuser", "proxy-pass")) as proxy:
        repo = world.repo(proxy=proxy.url)

        assert await world.cache.resolve(repo, "main") == head

    assert f"127.0.0.1:{world.api.port}" in proxy.tunnels
    assert f"127.0.0.1:{world.front.port}" in proxy.tunnels
    assert proxy.refused == 0


async def test_the_notifier_can_post_statuses_with_the_same_installation_token(
    working_copy: MakeCopy, world: World
) -> None:
    repo = world.repo()
    async with HostCredentials() as credentials:
        token = await credentials.api_token(repo)

        assert token is not None
        assert token.get_secret_value() == world.api.exchanges[-1].token
        assert credentials.serves_api(repo, "github", world.api.url)
        assert not credentials.serves_api(repo, "github", "https://api.github.com")
