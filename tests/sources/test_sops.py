"""SOPS files of an app decrypted by the real `sops` before rendering, and every way that
can fail named by file: no keys configured, the wrong key, a tampered file, no `sops`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.config import AppConfig
from syncer.sources import Renderer
from syncer.sources.decryption import Decryptor
from syncer.sources.sops import DecryptionError
from tests.support.sops import AgeKey, encrypt, make_age_key

PLAIN = "correct-horse-battery-staple"
SECRET = f"""apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: {PLAIN}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  a: b\n"


def app(**decryption: Any) -> AppConfig:
    settings: dict[str, Any] = {"repo": "r", "cluster": "c", "path": "apps/web"}
    if decryption:
        settings["decryption"] = {"provider": "sops", **decryption}
    return AppConfig.model_validate(settings)


def docs(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [d for text in files.values() for d in yaml.safe_load_all(text) if d]


async def test_a_directory_apps_sops_files_are_decrypted_and_their_values_scrubbed(
    sops_path: Path, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_AGE_KEY", age_key.identity)
    files = {
        "apps/web/secret.yaml": encrypt(sops_path, SECRET, age_key.recipient).encode(),
        "apps/web/plain.yaml": CONFIGMAP.encode(),
    }
    renderer = Renderer(tmp_path / "snapshots", decryptor=Decryptor(tmp_path))

    settings = app(keys={"env": "WEB_AGE_KEY"})
    out = await renderer.render(settings, files, commit="c1", app_name="web")
    again = await renderer.render(settings, files, commit="c2", app_name="web")

    assert out == again
    secret, plain = sorted(docs(out), key=lambda d: d["kind"], reverse=True)
    assert "sops" not in secret
    assert secret["stringData"] == {"password": PLAIN}
    assert plain["data"] == {"a": "b"}
    assert renderer.decryptor.decrypted == 1  # the resync came from the cache
    scrub = renderer.decryptor.scrub
    assert scrub(f'Invalid value: "{PLAIN}"') == 'Invalid value: "<redacted>"'
    encoded = "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZQ=="  # base64 of PLAIN, as data holds it
    assert scrub(f"data.password: {encoded}") == "data.password: <redacted>"


async def test_keys_from_a_file_decrypt_a_kustomize_base_before_kustomize_runs(
    sops_path: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# a comment, as age-keygen writes\n{age_key.identity}\n")
    tree = {
        "base/secret.yaml": encrypt(sops_path, SECRET, age_key.recipient).encode(),
        "base/kustomization.yaml": b"resources: [secret.yaml]\n",
        "apps/web/kustomization.yaml": b"resources: [../../base]\nnamePrefix: prod-\n",
    }
    settings = app(keys={"file": str(keys)})
    renderer = Renderer(tmp_path / "snapshots", decryptor=Decryptor(tmp_path))

    out = await renderer.render(
        settings,
        {k: v for k, v in tree.items() if k.startswith("apps/")},
        commit="c1",
        app_name="web",
        read_tree=lambda: _tree(tree),
    )

    (secret,) = docs(out)
    assert secret["metadata"]["name"] == "prod-db"
    assert secret["stringData"] == {"password": PLAIN}
    assert "sops" not in secret


async def _tree(tree: dict[str, bytes]) -> dict[str, bytes]:
    return tree


async def test_every_failure_names_the_file_and_never_the_plaintext(
    sops_binary: Path,
    sops_path: Path,
    age_keygen: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, theirs = make_age_key(age_keygen), make_age_key(age_keygen)
    encrypted = encrypt(sops_binary, SECRET, ours.recipient)
    monkeypatch.setenv("OURS", ours.identity)
    monkeypatch.setenv("THEIRS", theirs.identity)
    renderer = Renderer(tmp_path / "snapshots", decryptor=Decryptor(tmp_path))
    path = "apps/web/secret.yaml"

    async def failure(settings: AppConfig, content: str) -> str:
        with pytest.raises(DecryptionError) as caught:
            await renderer.render(settings, {path: content.encode()}, commit="c", app_name="web")
        assert PLAIN not in caught.value.message
        return caught.value.message

    assert await failure(app(), encrypted) == (
        f"{path} is SOPS-encrypted but app web has no decryption settings; "
        "add `decryption: {provider: sops, secret: NAME}` to the app"
    )
    assert await failure(app(keys={"env": "THEIRS"}), encrypted) == (
        f"{path}: none of the app's age keys decrypts it (it is encrypted to "
        f"{ours.recipient}); add the matching identity to the app's decryption keys"
    )
    tampered = encrypted.replace("name: db", "name: dbx")
    assert await failure(app(keys={"env": "OURS"}), tampered) == (
        f"{path}: SOPS MAC mismatch, the file was changed after it was encrypted; "
        "encrypt it again with sops (nothing was applied)"
    )
    assert await failure(app(keys={"env": "UNSET_AGE_KEY"}), encrypted) == (
        "app web: decryption keys: environment variable UNSET_AGE_KEY is not set"
    )
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    message = await failure(app(keys={"env": "OURS"}), encrypted)
    assert message.startswith(
        f"{path} is SOPS-encrypted; decrypting it needs the `sops` binary on the syncer's PATH"
    )
