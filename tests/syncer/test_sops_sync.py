"""SOPS-encrypted manifests end to end: committed encrypted, applied decrypted on the bed's
kube-apiserver, and their plaintext nowhere a user or an operator can read it: not in the
sync events on Kafka, the syncer's logs, `gitops diff` or the dashboard's pages; a tampered file
writes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dashboard.service import Dashboard
from schemas import GitopsConfig
from schemas.events import SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.drift.conftest import edit
from tests.drift.test_diff_command import gitops
from tests.support.bed import unique_name
from tests.support.k8s import create, create_namespace
from tests.support.kafka import read_topic
from tests.support.sops import AgeKey, encrypt
from tests.syncer.conftest import K8s, configmap
from tests.syncer.test_impersonation import app, team

MakeBench = Callable[..., Any]
KEYS = {"provider": "sops", "secret": "sops-keys"}


def secret(name: str, password: str) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\n"
        f"stringData:\n  password: {password}\n  user: app\n"
    )


def service(name: str, kind: str) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n"
        "  ports:\n    - port: 80\n"
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def keys_secret(k8s: K8s, namespace: str, key: AgeKey) -> None:
    """The age identity in a Secret of the syncer's namespace, as an operator stores it."""
    await create_namespace(k8s, namespace)
    await create(
        k8s,
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "metadata": {"name": "sops-keys"},
            "data": {"identity.agekey": b64(key.identity + "\n")},
        },
    )


async def dashboard_pages(config: GitopsConfig, app_name: str) -> dict[str, str]:
    """The dashboard's pages of one app, its live diff, the apps and the events page."""
    paths = ["/", f"/apps/{app_name}", f"/apps/{app_name}/objects", f"/apps/{app_name}/diff"]
    paths.append("/events")
    pages: dict[str, str] = {}
    async with Dashboard(config, host="127.0.0.1", port=0) as ui, aiohttp.ClientSession() as http:
        for path in paths:
            async with http.get(ui.url.rstrip("/") + path) as answer:
                assert answer.status == 200, (path, answer.status)
                pages[path] = await answer.text()
    return pages


async def test_encrypted_secret_applies_and_its_plaintext_never_shows(
    bench: MakeBench,
    k8s: K8s,
    sops_path: Path,
    age_key: AgeKey,
    inventory_namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    plain, invalid, edited = (unique_name(p) for p in ("pw-plain", "pw-type", "pw-live"))
    ns = unique_name("team")
    await team(k8s, ns)  # the app acts as its own account; the keys stay the syncer's
    await keys_secret(k8s, inventory_namespace, age_key)
    apps = {
        "web": app("apps/web", ns, service_account="deployer", self_heal=False, decryption=KEYS)
    }
    b = await bench(apps=apps)
    b.repo.commit_and_push(
        {
            "apps/web/db.yaml": encrypt(sops_path, secret("db", plain), age_key.recipient),
            "apps/web/plain.yaml": configmap("plain"),
        }
    )
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (applied,) = await b.outcomes(1)
        # A commit whose decrypted value the API server refuses, quoting it.
        b.repo.commit_and_push(
            {
                "apps/web/svc.yaml": encrypt(
                    sops_path, service("svc", invalid), age_key.recipient, regex="^type$"
                )
            }
        )
        await b.request("web")
        refused = (await b.outcomes(2))[1]

    assert isinstance(applied, SyncSucceeded), applied
    live = await k8s.get(f"/api/v1/namespaces/{ns}/secrets/db")
    assert live is not None
    assert live["data"] == {"password": b64(plain), "user": b64("app")}

    assert isinstance(refused, SyncFailed), refused
    (svc,) = refused.data.objects
    assert svc.error is not None
    assert 'spec.type: Unsupported value: "<redacted>"' in svc.error
    assert 'Unsupported value: "<redacted>"' in (refused.data.error or "")

    # Someone changes the live Secret: the diff says which key changed, never a value.
    await edit(k8s, f"/api/v1/namespaces/{ns}/secrets/db", {"data": {"password": b64(edited)}})
    code, out, err = await gitops(b.config, tmp_path, "diff", "web")
    assert code == 1, err
    assert f"Secret {ns}/db: changed data.password" in out
    changed = [line for line in out.splitlines() if line[:1] in "-+" and ":" in line]
    assert [line[:1] for line in changed if "password:" in line] == ["-", "+"]
    assert not [line for line in changed if "user:" in line]

    pages = await dashboard_pages(b.config, "web")
    assert f"Secret {ns}/db: changed data.password" in pages["/apps/web/diff"]

    records = await read_topic(b.bootstrap, b.topics.sync_events, expect=2, timeout=20)
    channels = {
        "sync events": b"\n".join(r.value for r in records).decode(),
        "syncer logs": caplog.text,
        "gitops diff": out + err,
        **{f"dashboard page {path}": text for path, text in pages.items()},
    }
    for value in (plain, invalid, edited):
        for form in (value, b64(value)):
            for channel, text in channels.items():
                assert form not in text, f"{form} leaked into the {channel}"


async def test_tampered_file_fails_naming_it_and_writes_nothing(
    bench: MakeBench,
    k8s: K8s,
    cluster: Any,
    sops_path: Path,
    age_key: AgeKey,
    inventory_namespace: str,
) -> None:
    await keys_secret(k8s, inventory_namespace, age_key)
    ns = unique_name("team")
    await create_namespace(k8s, ns)
    apps = {"web": app("apps/web", ns, decryption=KEYS)}
    b = await bench(apps=apps)
    encrypted = encrypt(sops_path, secret("db", unique_name("pw")), age_key.recipient)
    b.repo.commit_and_push(
        {
            # An unencrypted value changed after encryption: only the MAC can tell.
            "apps/web/db.yaml": encrypted.replace("name: db", "name: admin"),
            "apps/web/plain.yaml": configmap("plain"),
        }
    )
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncFailed), event
    assert event.data.error == (
        "apps/web/db.yaml: SOPS MAC mismatch, the file was changed after it was encrypted; "
        "encrypt it again with sops (nothing was applied)"
    )
    assert not [s for s in cluster.writes() if s.namespace == ns]
    assert await k8s.names(f"/api/v1/namespaces/{ns}/secrets") == []
    await asyncio.sleep(0)
