"""Key material in the configuration: SSH private keys, known_hosts lines, GitHub App keys.

A repository reached over SSH is only as safe as its pinned host keys, so known_hosts
text is parsed here, line by line, the way OpenSSH reads it: a mistake that OpenSSH
would silently skip would otherwise turn into "unknown host key" at the first fetch,
far from the line that caused it. Private keys are opened with `cryptography` at load
time so that a public key, a certificate or an encrypted key without its passphrase is
reported by `gitops config check` instead of by the first fetch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

HOST_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_MARKERS = frozenset({"@cert-authority", "@revoked"})


class KeyProblem(ValueError):
    """Key material that cannot be used; the text says what to change."""


@dataclass(frozen=True)
class KnownHost:
    """One known_hosts entry: who it is for and which key it pins."""

    line: int
    """1-based line in the text it came from."""
    marker: str | None
    hosts: str
    """The host patterns as written (`host`, `[host]:port`, `|1|salt|hash`, globs)."""
    key_type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)


def fingerprint(blob: bytes) -> str:
    """OpenSSH's `SHA256:` fingerprint of a public key blob, as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def parse_known_hosts(text: str) -> tuple[list[KnownHost], list[tuple[int, str]]]:
    """The entries of known_hosts text and the (line, problem) of each malformed line."""
    entries: list[KnownHost] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entries.append(_known_host(number, line))
        except KeyProblem as exc:
            problems.append((number, str(exc)))
    return entries, problems


def _known_host(number: int, line: str) -> KnownHost:
    fields = line.split()
    marker = None
    if fields[0].startswith("@"):
        if fields[0] not in _MARKERS:
            raise KeyProblem(
                f"unknown marker {fields[0]!r} (known_hosts allows @cert-authority, @revoked)"
            )
        marker, fields = fields[0], fields[1:]
    if len(fields) < 3:
        raise KeyProblem(
            "expected '<host patterns> <key type> <base64 key> [comment]', "
            "as `ssh-keyscan HOST` prints"
        )
    hosts, key_type, encoded = fields[0], fields[1], fields[2]
    if key_type not in HOST_KEY_TYPES:
        raise KeyProblem(f"unknown key type {key_type!r}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem(f"the {key_type} key is not valid base64") from None
    if _blob_type(blob) != key_type:
        raise KeyProblem(f"the key data does not hold a {key_type} key (truncated or mixed up?)")
    return KnownHost(number, marker, hosts, key_type, blob)


def _blob_type(blob: bytes) -> str | None:
    """The key type named inside a public key blob (its first SSH string)."""
    if len(blob) < 4:
        return None
    size = int.from_bytes(blob[:4], "big")
    if size > len(blob) - 4:
        return None
    return blob[4 : 4 + size].decode("ascii", "replace")


def load_ssh_private_key(text: str, passphrase: str | None) -> PrivateKeyTypes:
    """The private key of an OpenSSH or PEM key file, decrypted; `KeyProblem` otherwise."""
    data = text.strip().encode() + b"\n"
    if data.startswith((b"ssh-", b"ecdsa-", b"sk-")) or b"PUBLIC KEY" in data:
        raise KeyProblem("this is a public key; give the private key (e.g. id_ed25519, not .pub)")
    password = passphrase.encode() if passphrase else None
    loaders = (
        (serialization.load_ssh_private_key, b"BEGIN OPENSSH PRIVATE KEY"),
        (serialization.load_pem_private_key, b"PRIVATE KEY-----"),
    )
    for loader, marker in loaders:
        if marker not in data:
            continue
        try:
            key = loader(data, password=password)
        except TypeError:
            if password is None:
                raise KeyProblem("the private key is encrypted; set its passphrase") from None
            raise KeyProblem("the private key is not encrypted; remove the passphrase") from None
        except ValueError as exc:
            if password is not None and _wrong_password(exc):
                raise KeyProblem("the passphrase does not decrypt the private key") from None
            raise KeyProblem(f"not a usable private key ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - cryptography raises its own types for odd keys
            raise KeyProblem(f"not a usable private key ({type(exc).__name__})") from None
        if not isinstance(
            key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        ):
            raise KeyProblem(f"unsupported key type {type(key).__name__}; use ed25519 or RSA")
        return key
    raise KeyProblem(
        "not a private key: expected an OpenSSH ('BEGIN OPENSSH PRIVATE KEY') "
        "or PEM ('BEGIN ... PRIVATE KEY') key file"
    )


def _wrong_password(exc: ValueError) -> bool:
    text = str(exc).lower()
    return "password" in text or "decrypt" in text or "bad decrypt" in text


def load_app_private_key(text: str) -> rsa.RSAPrivateKey:
    """A GitHub App's private key (the PEM file GitHub generates); `KeyProblem` otherwise."""
    data = text.strip().encode() + b"\n"
    if b"PRIVATE KEY-----" not in data or b"OPENSSH PRIVATE KEY" in data:
        raise KeyProblem(
            "not the app's key: expected the PEM file GitHub generated for the app "
            "('-----BEGIN RSA PRIVATE KEY-----')"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"not a usable private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyProblem("GitHub App keys are RSA keys (JWTs are signed with RS256)")
    return key
