"""Who may look: loopback by default; any other address only with `ui.token`, checked on
every request (bearer header or the sign-in cookie)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from dashboard.service import Dashboard
from gitops.broker import free_port
from schemas import GitopsConfig
from tests.support.bed import RealKafka

TOKEN = "ui-token-7Hq2LmZp9Rw"


def config(kafka: RealKafka, **ui: object) -> GitopsConfig:
    return GitopsConfig.model_validate(
        {"kafka": {"bootstrap": kafka.bootstrap, "topic_prefix": kafka.topic_prefix}, "ui": ui}
    )


async def test_another_address_without_a_token_is_refused_with_the_file_and_key(
    kafka: RealKafka, tmp_path: Path
) -> None:
    path = tmp_path / "gitops.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap": kafka.bootstrap}}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gitops", "ui", "--config", str(path), "--host", "0.0.0.0",  # noqa: S104
        "--port", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, (out, err)
    assert f"{path}: ui.token: required to listen on 0.0.0.0" in err.decode()
    assert "Traceback" not in err.decode()


async def test_a_missing_token_variable_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gitops.yaml"
    path.write_text("ui:\n  token: {env: GITOPS_UI_TOKEN_UNSET}\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gitops", "ui", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert f"{path}:2" in err.decode() and "GITOPS_UI_TOKEN_UNSET is not set" in err.decode()


async def test_with_a_token_every_page_needs_it(kafka: RealKafka) -> None:
    async with (
        Dashboard(config(kafka, token={"value": TOKEN}), host="0.0.0.0", port=0) as ui,  # noqa: S104
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{ui.port}"
        for path in ("/", "/events", "/apps/x", "/stream", "/static/dashboard.js"):
            async with http.get(base + path) as answer:
                assert answer.status == 401, path
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        for wrong in ("Bearer nope", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN):
            async with http.get(base + "/", headers={"Authorization": wrong}) as answer:
                assert answer.status == 401, wrong
        async with http.get(base + "/", headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
            assert answer.status == 200
            assert "<h1>Apps" in await answer.text()
        async with http.get(base + "/", headers={"Accept": "text/html"}) as answer:
            assert answer.status == 401
            assert 'action="/login"' in await answer.text()


async def test_the_sign_in_form_sets_a_cookie_that_is_not_the_token(kafka: RealKafka) -> None:
    async with Dashboard(config(kafka, token={"value": TOKEN}), host="127.0.0.1", port=0) as ui:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.post(f"{ui.url}login", data={"token": "wrong"}) as answer:
                assert answer.status == 401
            async with http.post(
                f"{ui.url}login", data={"token": TOKEN}, allow_redirects=False
            ) as answer:
                assert answer.status == 303
                cookie = answer.cookies["gitops_ui"]
                assert TOKEN not in cookie.value
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
            async with http.get(f"{ui.url}events") as answer:
                assert answer.status == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_token(kafka: RealKafka, host: str) -> None:
    Dashboard(config(kafka), host=host, port=0)
