"""SOPS-encrypted files: recognise them, and decrypt one with the real `sops` binary.

`sops` is run as Kustomize runs `kubectl`: found on PATH, as a child process, with the
encrypted bytes on its stdin and the plaintext on its stdout, so the plaintext never
touches the disk. Its environment holds only the app's age identities (`SOPS_AGE_KEY`)
and an empty HOME, so no key of the machine's user (`~/.config/sops`, `~/.ssh`) can
decrypt what the app's own keys cannot.

Errors name the file and say what to do; they never quote the file's content. `sops`
verifies the file's MAC before it answers: a file changed after it was encrypted is
refused (exit 51), as is one none of the keys opens (exit 128).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from syncer.errors import PermanentSyncError
from syncer.sources.errors import RenderError
from syncer.sources.process import child_env, run

SOPS = "sops"
DEFAULT_TIMEOUT = 30.0
_EXIT_MAC_MISMATCH = 51
_EXIT_NO_KEY = 128
_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DecryptionError(PermanentSyncError):
    """A SOPS file could not be decrypted; the message names the file and why."""


def encrypted(path: str, content: bytes) -> bool:
    """Whether `content` is a SOPS-encrypted YAML or JSON document (it carries `sops.mac`).

    A substring test first, so the thousands of plain manifests of an app cost no parse."""
    if b"sops" not in content or b"ENC[" not in content or b"mac" not in content:
        return False
    if Path(path).suffix.lower() not in _FORMATS:
        return False
    return any(isinstance(d.get("sops"), dict) and "mac" in d["sops"] for d in documents(content))


def documents(content: bytes) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.load_all(content, Loader=_LOADER))
    except yaml.YAMLError:
        return []
    return [d for d in docs if isinstance(d, dict)]


def recipients(content: bytes) -> list[str]:
    """The age recipients (public keys) a file is encrypted to, for error messages."""
    found: list[str] = []
    for doc in documents(content):
        for entry in (doc.get("sops") or {}).get("age") or []:
            if isinstance(entry, dict) and isinstance(entry.get("recipient"), str):
                found.append(entry["recipient"])
    return sorted(set(found))


async def decrypt(
    path: str,
    content: bytes,
    *,
    identities: str,
    home: Path,
    binary: str = SOPS,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """The plaintext of the SOPS file `path`, decrypted with the age `identities`."""
    kind = _FORMATS[Path(path).suffix.lower()]
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    try:
        finished = await run(
            [binary, "decrypt", "--input-type", kind, "--output-type", kind, "/dev/stdin"],
            what="sops",
            timeout=timeout,
            cwd=home,
            env=child_env(home, {"SOPS_AGE_KEY": identities, "XDG_CONFIG_HOME": str(home)}),
            stdin=content,
        )
    except RenderError as exc:  # it could not start
        raise DecryptionError(
            f"{path} is SOPS-encrypted; decrypting it needs the `sops` binary on the syncer's "
            f"PATH ({exc.message})"
        ) from None
    if finished.returncode == 0:
        return finished.stdout
    if finished.returncode == _EXIT_MAC_MISMATCH:
        raise DecryptionError(
            f"{path}: SOPS MAC mismatch, the file was changed after it was encrypted; "
            "encrypt it again with sops (nothing was applied)"
        )
    if finished.returncode == _EXIT_NO_KEY:
        to = ", ".join(recipients(content)) or "no age recipient"
        raise DecryptionError(
            f"{path}: none of the app's age keys decrypts it (it is encrypted to {to}); "
            "add the matching identity to the app's decryption keys"
        )
    first = next(
        (line for line in finished.stderr.decode("utf-8", "replace").splitlines() if line), ""
    )
    raise DecryptionError(f"{path}: sops could not decrypt it: {first[:200]}")
