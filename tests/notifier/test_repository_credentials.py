"""A commit-status rule without `token` borrows the app's repository credential, on its host only.

The GitHub-shaped fake serves the statuses operation of GitHub's description and, on the
same host and port as on api.github.com, the installation-token exchange (checked
against GitHub's published operation, tests/support/githubapi.py); it accepts a status
only with a token it minted and still considers valid. Events come through the bed's
Kafka to a real notifier, as in the other notifier tests.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.notifier.conftest import (
    REPO_URL,
    TOKEN,
    notifier_bench,
    running,
    sha,
    status_rule,
    write_config,
)
from tests.support.bed import RealKafka
from tests.support.fakeapis import FakeApi, states, status_api
from tests.support.githubapi import FakeGitHubApi

APP_ID = 424242
INSTALLATION_ID = 98765


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@asynccontextmanager
async def github_with_app(key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[FakeApi, FakeGitHubApi]]:
    """One GitHub-shaped host: commit statuses and the app's token exchange."""
    exchange = FakeGitHubApi(APP_ID, key.public_key(), INSTALLATION_ID)
    api = status_api(
        "github",
        TOKEN,
        tokens=lambda: exchange.valid_tokens,
        mounts={"/app/installations/": exchange.handle},
    )
    async with api:
        yield api, exchange
    assert exchange.problems == [], exchange.problems  # every exchange followed GitHub's


def app_repository(api_url: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The apps' repository as the syncer fetches it: as a GitHub App installation."""
    return {
        "url": REPO_URL,
        "auth": {
            "github_app": {
                "app_id": APP_ID,
                "installation_id": INSTALLATION_ID,
                "private_key": {"value": pem(key)},
                "api_url": api_url,
            }
        },
    }


def without_token(api: FakeApi) -> dict[str, Any]:
    rule = status_rule(api)
    del rule["token"]
    return rule


async def test_a_rule_without_token_posts_with_the_repositorys_installation_token(
    kafka: RealKafka, app_key: rsa.RSAPrivateKey
) -> None:
    async with github_with_app(app_key) as (api, exchange):
        b = await notifier_bench(
            kafka, [without_token(api)], repository=app_repository(api.url, app_key)
        )
        commits = [sha(), sha()]
        notifier = await running(b.config)
        try:
            for commit in commits:
                request = await b.requested("web", commit)
                await b.outcome(request, "succeeded")
                await api.wait_for(lambda a, c=commit: len(states(a, c, "gitops/web")) == 2)
        finally:
            await notifier.stop()

    assert api.rejected == []
    assert [s for c in commits for s in states(api, c, "gitops/web")] == ["pending", "success"] * 2
    (minted,) = [e.token for e in exchange.exchanges]  # one token, cached for all four
    assert minted is not None
    assert {r.headers["Authorization"] for r in api.accepted()} == {f"Bearer {minted}"}


async def test_a_revoked_installation_token_is_minted_again_after_the_401(
    kafka: RealKafka, app_key: rsa.RSAPrivateKey
) -> None:
    async with github_with_app(app_key) as (api, exchange):
        b = await notifier_bench(
            kafka, [without_token(api)], repository=app_repository(api.url, app_key)
        )
        commit = sha()
        notifier = await running(b.config)
        try:
            request = await b.requested("web", commit)
            await api.wait_for(lambda a: len(states(a, commit, "gitops/web")) == 1)
            exchange.valid_tokens.clear()  # revoked on GitHub before it expired
            await b.outcome(request, "failed", error="it broke")
            await api.wait_for(lambda a: len(states(a, commit, "gitops/web")) == 2)
            failures = await b.failures(expect=0, timeout=2.0)
        finally:
            await notifier.stop()

    assert states(api, commit, "gitops/web") == ["pending", "failure"]
    first, second = (e.token for e in exchange.exchanges)
    assert first != second
    assert api.rejected == ["POST /repos/{owner}/{repo}/statuses/{sha}: bad or missing credentials"]
    assert api.accepted()[-1].headers["Authorization"] == f"Bearer {second}"
    assert failures == []


@pytest.mark.parametrize("provider", ["gitlab", "gitea", "bitbucket"])
async def test_a_repository_token_on_the_providers_host_sets_its_statuses(
    kafka: RealKafka, provider: str
) -> None:
    async with status_api(provider, TOKEN) as api:
        repository = {"url": f"{api.root}/acme/shop.git", "auth": {"token": {"value": TOKEN}}}
        b = await notifier_bench(kafka, [without_token(api)], repository=repository)
        commit = sha()
        notifier = await running(b.config)
        try:
            request = await b.requested("web", commit)
            await b.outcome(request, "succeeded")
            await api.wait_for(lambda a: len(states(a, commit, "gitops/web")) == 2)
        finally:
            await notifier.stop()

    assert api.rejected == []
    assert len(api.accepted()) == 2


async def test_a_rule_for_another_host_is_a_config_error_and_sends_nothing(
    kafka: RealKafka, app_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    async with github_with_app(app_key) as (home, exchange), status_api("github", TOKEN) as other:
        b = await notifier_bench(
            kafka, [without_token(other)], repository=app_repository(home.url, app_key)
        )
        path = write_config(b.config, tmp_path / "gitops.yaml")
        # A subprocess of this loop's own, so the fakes could answer if it did send anything.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gitops",
            "notifier",
            "--config",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
        stderr = err.decode()

    assert process.returncode == 2, stderr
    line = next(x for x in stderr.splitlines() if "notifications.0" in x)
    assert line.startswith(f"{path}:")
    assert "rule 'github-status' has no 'token', and repository 'shop' (of app web)" in line
    assert (
        f"GitHub App {APP_ID} for {home.url}: nothing authenticates it at github {other.url}"
        in (line)
    )
    assert [x for x in stderr.splitlines() if x.startswith(f"{path}:")] == [line]
    assert other.received == [] and other.rejected == []
    assert exchange.exchanges == [], "no token minted for a rule that cannot use it"
    assert pem(app_key).splitlines()[1] not in stderr


async def test_the_notifier_itself_never_sends_a_repository_credential_to_another_host(
    kafka: RealKafka, app_key: rsa.RSAPrivateKey
) -> None:
    """Defence in depth: a configuration built without the loader's check (as `gitops up`
    and these tests build theirs) still gives up, naming the rule, and sends nothing."""
    async with github_with_app(app_key) as (home, exchange), status_api("github", TOKEN) as other:
        b = await notifier_bench(
            kafka, [without_token(other)], repository=app_repository(home.url, app_key)
        )
        commit = sha()
        notifier = await running(b.config)
        try:
            await b.requested("web", commit)
            (failure,) = await b.failures(expect=1)
        finally:
            await notifier.stop()

    assert other.received == [] and other.rejected == []
    assert exchange.exchanges == []
    assert failure.data.rule == "github-status"
    assert failure.data.attempts == 0
    assert failure.data.error == (
        f"rule github-status has no 'token' and repository 'shop' of app web has no credential"
        f" for github at {other.url} (a repository credential is only sent to its own host);"
        " set 'token' on the rule (not sent)"
    )
