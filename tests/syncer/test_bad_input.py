"""Hostile or broken commits fail their sync with a clear message; the worker carries on."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from schemas.events import SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.syncer.conftest import Bench, K8s, configmap, namespace_yaml

MakeBench = Callable[..., Any]

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
BOMB_OBJECT = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  " + BOMB.replace(
    "\n", "\n  "
)


def commit_bomb(b: Bench) -> None:
    b.repo.commit_and_push({"apps/web/bomb.yaml": BOMB_OBJECT})


def commit_escaping_symlink(b: Bench) -> None:
    target = b.repo.path / "apps" / "web"
    target.mkdir(parents=True, exist_ok=True)
    os.symlink("../../../../etc/passwd", target / "passwd.yaml")
    b.repo.commit_and_push({})


def commit_huge_file(b: Bench) -> None:
    b.repo.commit_and_push({"apps/web/huge.yaml": b"# " + b"x" * (50 * 1024 * 1024) + b"\n"})


async def sync_once(b: Bench, expect: int) -> Any:
    await b.request("web")
    return (await b.outcomes(expect))[expect - 1]


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (commit_bomb, "YAML bomb"),
        (commit_escaping_symlink, "symlink"),
        (commit_huge_file, "huge.yaml"),
    ],
    ids=["yaml-bomb", "symlink-escape", "50MB-file"],
)
async def test_bad_commit_fails_clearly_and_the_next_good_commit_syncs(
    bench: MakeBench, k8s: K8s, make_bad: Callable[[Bench], None], message: str
) -> None:
    b = await bench()
    make_bad(b)
    async with Syncer(b.config, syncer_id="s1") as syncer:
        failed = await sync_once(b, 1)
        assert isinstance(failed, SyncFailed), failed
        assert message in (failed.data.error or ""), failed.data.error

        b.repo.git("rm", "-r", "--quiet", "apps/web")
        b.repo.commit_and_push(
            {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/ok.yaml": configmap("ok")}
        )
        healthy = await sync_once(b, 2)
        assert isinstance(healthy, SyncSucceeded), healthy
        assert syncer.syncer_id == "s1"
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/ok") is not None


async def test_app_path_escaping_the_repository_fails_the_sync(bench: MakeBench) -> None:
    b = await bench()
    b.repo.commit_and_push({"apps/web/ok.yaml": configmap("ok", namespace=b.ns)})
    # The config loader refuses such a path; this checks the git cache refuses it too.
    app = b.config.apps["web"].model_copy(update={"path": "apps/../../outside"})
    config = b.config.model_copy(update={"apps": {"web": app}})
    async with Syncer(config, syncer_id="s1"):
        failed = await sync_once(b, 1)
    assert isinstance(failed, SyncFailed), failed
    assert "apps/../../outside" in (failed.data.error or ""), failed.data.error
