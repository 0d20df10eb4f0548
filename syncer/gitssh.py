"""Fetching over SSH with the system's OpenSSH client, host keys always checked.

dulwich speaks the git protocol over whatever its SSH vendor connects; this vendor runs
`ssh` the way a careful operator would for a machine account: only the configured key
(`IdentitiesOnly`, no agent), only the pinned host keys (`StrictHostKeyChecking=yes`
against our own known_hosts file, the user's and the system's ignored), no prompts
(`BatchMode`), no user ssh_config. OpenSSH, not a Python SSH library, because it is
what `git` itself uses: the handshake and the transfer cost the same as for `git clone`.

OpenSSH reads identities from files, so the key (decrypted when it has a passphrase,
which `BatchMode` could not ask for) is written to a 0600 file in a 0700 directory of
this process's own, removed on close. When a host key is refused, OpenSSH only says so;
`diagnose_host_key` asks the server for its keys (`ssh-keyscan`) to name the one it
presented and its fingerprint, and whether known_hosts had another key for that host
(a changed key) or none (an unknown host).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives import serialization
from dulwich.client import SSHGitClient, SSHVendor, SubprocessWrapper
from dulwich.errors import HangupException
from dulwich.protocol import Protocol

from schemas.config import FileRef, SshAuth
from schemas.keys import KeyProblem, KnownHost, load_ssh_private_key, parse_known_hosts
from syncer.giterrors import PermanentGitError

HOST_KEY_REFUSED = b"Host key verification failed"


class HostKeyError(PermanentGitError):
    """The SSH server presented a host key that known_hosts does not pin for it."""


@dataclass(frozen=True)
class SshIdentity:
    """The files one repository's `ssh` needs: the key and the known_hosts to check against."""

    key_file: Path
    known_hosts_file: Path


class SshIdentities:
    """Writes each SSH auth's key and known_hosts into a private directory; blocking."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._made: dict[tuple[str, str, str], SshIdentity] = {}

    def identity(self, auth: SshAuth) -> SshIdentity:
        key_text = auth.private_key.resolve().get_secret_value()
        passphrase = auth.passphrase.resolve().get_secret_value() if auth.passphrase else None
        known = auth.known_hosts
        marker = known.file if isinstance(known, FileRef) else known
        cache_key = (key_text, passphrase or "", marker)
        made = self._made.get(cache_key)
        if made is not None and made.key_file.exists():
            return made
        try:
            key = load_ssh_private_key(key_text, passphrase)
        except KeyProblem as exc:
            raise PermanentGitError(f"auth.ssh.private_key: {exc}") from None
        folder = Path(tempfile.mkdtemp(prefix="id-", dir=self._private_root()))
        key_file = folder / "key"
        _write_private(
            key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            ),
        )
        if isinstance(known, FileRef):
            known_file = Path(known.file).resolve()
        else:
            known_file = folder / "known_hosts"
            _write_private(known_file, known.encode() + b"\n")
        made = SshIdentity(key_file, known_file)
        self._made[cache_key] = made
        return made

    def _private_root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="gitops-ssh-"))
            self._root.chmod(0o700)
        return self._root

    def close(self) -> None:
        """Remove every key written; safe to call more than once."""
        root, self._root = self._root, None
        self._made.clear()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as sink:
        sink.write(data)


def ssh_options(identity: SshIdentity, *, timeout: float) -> list[str]:
    """The `ssh` options that pin the host key and the identity; never trust on first use."""
    seconds = max(1, round(timeout))
    return [
        "-F", "/dev/null",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={identity.known_hosts_file}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "CheckHostIP=no",
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", f"IdentityFile={identity.key_file}",
        "-o", "PreferredAuthentications=publickey",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-o", "ControlMaster=no",
        "-o", "ControlPath=none",
        "-o", "ForwardAgent=no",
        "-o", "ForwardX11=no",
        "-o", "RequestTTY=no",
        "-o", f"ConnectTimeout={seconds}",
        "-o", f"ServerAliveInterval={seconds}",
        "-o", "ServerAliveCountMax=2",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip


class StrictSshVendor(SSHVendor):
    """dulwich's SSH vendor for one identity: the system `ssh` with `ssh_options`."""

    def __init__(self, identity: SshIdentity, *, timeout: float) -> None:
        self.identity = identity
        self.timeout = timeout

    def run_command(
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,
        protocol_version: int | None = None,
    ) -> SubprocessWrapper:
        if host.startswith("-") or (username or "").startswith("-"):
            raise PermanentGitError(f"refusing SSH host {host!r}: it would be read as an option")
        args = ["ssh", "-x", *ssh_options(self.identity, timeout=self.timeout)]
        if port:
            args += ["-p", str(port)]
        if protocol_version:
            args += ["-o", f"SetEnv=GIT_PROTOCOL=version={protocol_version}"]
        args += ["--", f"{username}@{host}" if username else host, command.decode()]
        process = subprocess.Popen(
            args,
            bufsize=0,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_ssh_environment(),
        )
        return SubprocessWrapper(process)


def _ssh_environment() -> dict[str, str]:
    """The environment `ssh` runs with: no agent, no askpass, no display to prompt on."""
    dropped = {"SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY"}
    return {k: v for k, v in os.environ.items() if k not in dropped}


def host_key_refused(exc: BaseException) -> bool:
    lines = getattr(exc, "stderr_lines", None) or []
    return isinstance(exc, HangupException) and any(HOST_KEY_REFUSED in line for line in lines)


def known_host_name(host: str, port: int | None) -> str:
    """How known_hosts names a host: `host`, or `[host]:port` for a port other than 22."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def diagnose_host_key(identity: SshIdentity, host: str, port: int | None, timeout: float) -> str:
    """Why OpenSSH refused `host`'s key: what the server presents and what known_hosts pins."""
    name = known_host_name(host, port)
    presented = _presented_keys(host, port, timeout)
    pinned = [e for e in _known_entries(identity) if _names(e.hosts, name)]
    offered = ", ".join(f"{e.key_type} {e.fingerprint}" for e in presented) or "no readable key"
    if pinned:
        pins = ", ".join(f"{e.key_type} {e.fingerprint}" for e in pinned)
        return (
            f"the host key of {name} has CHANGED: the server presents {offered}, but known_hosts "
            f"pins {pins}; if the server's key was rotated on purpose, update known_hosts, "
            "otherwise someone may be intercepting the connection"
        )
    return (
        f"the host key of {name} is unknown: the server presents {offered}, and known_hosts has "
        f"no key for {name}; add the server's line (`ssh-keyscan -p {port or 22} {host}`, "
        "checked out of band)"
    )


def _known_entries(identity: SshIdentity) -> list[KnownHost]:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        entries, _ = parse_known_hosts(identity.known_hosts_file.read_text(encoding="utf-8"))
        return [e for e in entries if e.marker is None]
    return []


def _names(patterns: str, name: str) -> bool:
    """Whether a known_hosts host field names `name`, as OpenSSH matches it: hashed
    (`|1|salt|hmac`, what `ssh-keygen -H` writes), globs, and `!` negations."""
    if patterns.startswith("|1|"):
        salt, _, digest = patterns[3:].partition("|")
        with contextlib.suppress(ValueError, binascii.Error):
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, base64.b64decode(digest))
        return False
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _glob(pattern.removeprefix("!")).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH's host pattern: `*` and `?` are wildcards, everything else (brackets of
    `[host]:port` included) is literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE)


def _presented_keys(host: str, port: int | None, timeout: float) -> list[KnownHost]:
    if shutil.which("ssh-keyscan") is None:
        return []
    args = ["ssh-keyscan", "-T", str(max(1, round(timeout))), "-p", str(port or 22), "--", host]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        answer = subprocess.run(
            args, capture_output=True, timeout=timeout + 5, check=False, text=True
        )
        entries, _ = parse_known_hosts(answer.stdout)
        return list(entries)
    return []


class SshGitClient(SSHGitClient):
    """dulwich's SSH client with `StrictSshVendor`, whose calls run inside `guard()`.

    dulwich leaves the connection (and the `ssh` process) open when the server hangs up
    before the protocol is negotiated, as OpenSSH does when it refuses a host key; the
    guard closes what the failed call opened on its thread, and explains a refused key.
    """

    def __init__(
        self, host: str, *, port: int | None, username: str | None, identity: SshIdentity,
        timeout: float,
    ) -> None:  # fmt: skip
        super().__init__(
            host, port=port, username=username, vendor=StrictSshVendor(identity, timeout=timeout)
        )
        self.identity = identity
        self.timeout = timeout
        self._opened = threading.local()

    def _connect(
        self, cmd: bytes, path: str | bytes, protocol_version: int | None = None
    ) -> tuple[Protocol, Callable[[], bool], IO[bytes] | None]:
        proto, can_read, stderr = super()._connect(cmd, path, protocol_version)
        opened: list[Protocol] | None = getattr(self._opened, "protocols", None)
        if opened is not None:
            opened.append(proto)
        return proto, can_read, stderr

    @contextlib.contextmanager
    def guard(self, url: str) -> Iterator[None]:
        """Close this thread's connections when the call fails; name a refused host key."""
        opened: list[Protocol] = []
        self._opened.protocols = opened
        try:
            yield
        except BaseException as exc:
            for proto in opened:
                with contextlib.suppress(Exception):
                    proto.close()
            if host_key_refused(exc):
                reason = diagnose_host_key(self.identity, self.host, self.port, self.timeout)
                raise HostKeyError(f"{url}: {reason}") from None
            raise
        finally:
            self._opened.protocols = None
