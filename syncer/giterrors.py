"""Git errors that say how to react, and the one place that converts dulwich's errors into them.

The worker only needs to know whether waiting can help: `TransientGitError` (server
unreachable, timeout, 5xx, connection reset) is retried with backoff, `PermanentGitError`
(missing repository, refused credentials, unknown branch or commit, corrupt data, unsafe
paths, oversized files) fails the sync at once. A fetch whose answer is not git at all
(garbage from a proxy, a truncated pack) is transient: the server, not the repository,
is at fault. Messages name the URL without its
credentials, the ref and the path, and never carry a token: `redact` strips URL user info
and every known secret from any library text that reaches a message.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterable

from dulwich.client import HTTPProxyUnauthorized, HTTPUnauthorized, InvalidWants
from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    FileFormatException,
    GitProtocolError,
    HangupException,
    NotGitRepository,
    ObjectMissing,
    WrongObjectException,
)


class GitError(Exception):
    """Base of every git cache error; its text is shown to users as is."""


class TransientGitError(GitError):
    """The git server may answer later (unreachable, timeout, 5xx): retry with backoff."""


class PermanentGitError(GitError):
    """Retrying cannot help until the repository, the config or the request changes."""


class CredentialsRefusedError(PermanentGitError):
    """The host refused our credentials (HTTP 401/403, SSH publickey); a minted token may
    be renewed once, anything else needs a config change."""


class UnsafePathError(PermanentGitError):
    """A path or symlink would read outside the repository."""


class FileTooLargeError(PermanentGitError):
    """A file under the app path is larger than the cache's `max_file_bytes`."""


class HttpStatusError(Exception):
    """The git host answered a request with a status other than 200 (raised by our client)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_HTTP_STATUS = re.compile(r"unexpected http resp (?P<status>\d{3})")


def safe_url(url: str) -> str:
    """The URL as it may appear in messages and logs: without `user:token@`."""
    return _USERINFO.sub(r"\g<scheme>", url)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove URL user info and every given secret value from library text."""
    cleaned = safe_url(text)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, "***")
    return cleaned


def _untrusted_certificate(exc: BaseException) -> bool:
    """Whether certificate verification failed somewhere in `exc`'s chain (urllib3 wraps it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        reason = getattr(current, "reason", None)
        current = (
            reason
            if isinstance(reason, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return False


def _network_reason(exc: BaseException) -> str | None:
    """A short reason when `exc` (or what caused it) is a network failure, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError | BrokenPipeError):
            return "connection reset"
        if isinstance(current, ConnectionError):
            return "connection failed"
        if isinstance(current, socket.gaierror):
            return "host name does not resolve"
        name = type(current).__name__
        if name in {"ReadTimeoutError", "ConnectTimeoutError"}:
            return "timed out"
        if name in {"NewConnectionError", "MaxRetryError", "ProtocolError"}:
            reason = getattr(current, "reason", None)
            if isinstance(reason, BaseException):
                current = reason
                continue
            text = str(current).lower()
            if "refused" in text:
                return "connection refused"
            if "reset" in text or "aborted" in text:
                return "connection reset"
            if "timed out" in text:
                return "timed out"
            return "connection failed"
        current = current.__cause__ or current.__context__
    return None


_SSH_PERMANENT = (
    ("permission denied", "the SSH server refused the key; check that auth.ssh.private_key "
     "is a deploy key of this repository (or of a user who may read it)"),
    ("does not appear to be a git repository", "no git repository at that path; check the URL"),
    ("repository not found", "no git repository at that path; check the URL"),
    ("no such identity", "the SSH key file cannot be read"),
)  # fmt: skip
_SSH_TRANSIENT = ("connection refused", "connection timed out", "operation timed out",
                  "could not resolve hostname", "connection closed", "connection reset",
                  "no route to host", "network is unreachable", "timeout, server")  # fmt: skip


def _ssh_failure(where: str, detail: str) -> GitError | None:
    """A GitError for what OpenSSH or the remote's git printed on stderr, when recognised."""
    text = detail.lower()
    for needle, advice in _SSH_PERMANENT:
        if needle in text:
            kind = CredentialsRefusedError if needle == "permission denied" else PermanentGitError
            return kind(f"{where}: {advice} ({detail.strip()[:200]})")
    if any(needle in text for needle in _SSH_TRANSIENT):
        return TransientGitError(f"{where}: {detail.strip()[:200]}; will retry")
    return None


def translate(
    exc: BaseException, *, url: str, action: str, secrets: Iterable[str] = ()
) -> GitError:
    """Convert a dulwich, urllib3 or OS error raised while `action` on `url` into a GitError.

    `action` reads like "fetching branch main" and starts every message, so users see
    what was attempted, where, and what to do about it.
    """
    if isinstance(exc, GitError):
        return exc
    where = f"{action} from {safe_url(url)}"
    detail = redact(str(exc), secrets)
    if isinstance(exc, HTTPUnauthorized | HTTPProxyUnauthorized):
        return CredentialsRefusedError(
            f"{where}: the server refused the credentials (401); "
            "check the repository's auth token and username"
        )
    if isinstance(exc, NotGitRepository):
        return PermanentGitError(
            f"{where}: no git repository there (404 or missing path); check the repository URL"
        )
    if isinstance(exc, HttpStatusError):
        status = exc.status
        if status == 404:
            return PermanentGitError(
                f"{where}: no git repository there (404); check the repository URL"
            )
        if status in {401, 403, 407}:
            return CredentialsRefusedError(
                f"{where}: the server refused the credentials ({status}); check the "
                "repository's auth token and username, and that it may read this repository"
            )
        if status in {408, 429} or status >= 500:
            return TransientGitError(f"{where}: the server answered {status}; will retry")
        return PermanentGitError(f"{where}: the server answered {status}")
    if isinstance(exc, InvalidWants):
        return PermanentGitError(f"{where}: the server does not offer the requested commits")
    if isinstance(exc, GitProtocolError) and not isinstance(exc, HangupException):
        match = _HTTP_STATUS.search(str(exc))
        if match is not None:
            status = int(match.group("status"))
            if status in {401, 403}:
                return CredentialsRefusedError(
                    f"{where}: access denied ({status}); check the repository's auth token "
                    "and that it may read this repository"
                )
            if status == 429 or status >= 500:
                return TransientGitError(f"{where}: the server answered {status}; will retry")
            return PermanentGitError(f"{where}: the server answered {status}")
    if _untrusted_certificate(exc):
        return PermanentGitError(
            f"{where}: the server's TLS certificate is not trusted; if a private CA signs it, "
            "set auth.ca_bundle to that CA's PEM file"
        )
    reason = _network_reason(exc)
    if reason is not None:
        return TransientGitError(f"{where}: {reason}; will retry")
    if isinstance(exc, HangupException) and exc.stderr_lines:
        found = _ssh_failure(where, detail)
        if found is not None:
            return found
    if isinstance(exc, HangupException):
        return TransientGitError(f"{where}: the server hung up ({detail}); will retry")
    if isinstance(exc, GitProtocolError):
        return TransientGitError(f"{where}: protocol error ({detail}); will retry")
    if action.startswith("fetching") and isinstance(
        exc, ChecksumMismatch | ApplyDeltaError | FileFormatException | ValueError
    ):
        # What failed to parse is the server's answer (a proxy's page, a truncated pack),
        # not the repository: no commit can fix it and the next fetch may well succeed.
        return TransientGitError(
            f"{where}: the server answered with data that is not git ({detail[:120]}); will retry"
        )
    if isinstance(
        exc,
        ChecksumMismatch
        | ApplyDeltaError
        | FileFormatException
        | ObjectMissing
        | WrongObjectException
        | ValueError,
    ):
        return PermanentGitError(f"{where}: corrupt or unexpected git data ({detail})")
    if isinstance(exc, OSError):
        if exc.errno in {errno.ENOSPC, errno.EDQUOT}:
            return TransientGitError(f"{where}: the cache disk is full; free space to continue")
        return TransientGitError(f"{where}: I/O error ({detail}); will retry")
    return PermanentGitError(f"{where}: {type(exc).__name__}: {detail}")
