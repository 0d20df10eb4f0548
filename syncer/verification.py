"""Commit verification: apply a commit only when one of the configured keys signed it.

Without it, anyone who can push to the branch can change the cluster. With a
repository's `verify:` set, the commit to apply must carry a signature (git's `gpgsig`
header) made by one of the listed SSH keys (`gpg.format=ssh`) or OpenPGP keys; an
unsigned commit, a signature by any other key, or a signature that does not match the
commit's content fails the sync permanently with a message naming the commit.

The keys come from the config, never from the repository, so a compromised repository
cannot vouch for itself. Verification uses the tools git itself uses — `ssh-keygen -Y
verify` (Debian: openssh-client) and `gpg` (Debian: gnupg) in a throwaway keyring — as
child processes, with their files in a private temporary directory under the worker's
cache dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from schemas.config import CommitVerification
from syncer.errors import PermanentSyncError, TransientSyncError

SSH_NAMESPACE = "git"
"""The namespace git signs commits in (`ssh-keygen -Y sign -n git`)."""
_PRINCIPAL = "gitops-pipeline"
_SSH_ARMOR = b"-----BEGIN SSH SIGNATURE-----"
_PGP_ARMOR = b"-----BEGIN PGP SIGNATURE-----"
_FINGERPRINT = re.compile(r"(SHA256:[A-Za-z0-9+/=]+)")


class UnverifiedCommitError(PermanentSyncError):
    """The commit is unsigned or not signed by an allowed key; it must not be applied."""


class VerifierUnavailable(TransientSyncError):
    """The verifying tool is missing or did not answer; the commit was neither accepted
    nor rejected, so the sync may be retried once the worker is fixed."""


@dataclass(frozen=True)
class SignedCommit:
    """A raw commit split into its signature and the bytes the signature covers."""

    signature: bytes | None
    payload: bytes


def split_signature(raw_commit: bytes) -> SignedCommit:
    """Separate the `gpgsig` header from a raw commit object, as `git verify-commit` does.

    The payload is the commit object without that header (continuation lines included),
    byte for byte what the signer signed.
    """
    header, sep, message = raw_commit.partition(b"\n\n")
    kept: list[bytes] = []
    signature: list[bytes] = []
    in_sig = False
    for line in header.split(b"\n"):
        if line.startswith(b"gpgsig "):
            in_sig = True
            signature.append(line[len(b"gpgsig ") :])
        elif in_sig and line.startswith(b" "):
            signature.append(line[1:])
        else:
            in_sig = False
            kept.append(line)
    payload = b"\n".join(kept) + sep + message
    return SignedCommit(b"\n".join(signature) + b"\n" if signature else None, payload)


def _short(commit: str) -> str:
    return commit[:7]


async def _run(
    argv: list[str], *, cwd: Path, stdin: bytes, timeout: float, env: dict[str, str]
) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise VerifierUnavailable(
            f"cannot run {argv[0]} to verify commit signatures ({exc.strerror}); install "
            "openssh-client and gnupg on the worker"
        ) from None
    try:
        async with asyncio.timeout(timeout):
            output, _ = await proc.communicate(stdin)
    except TimeoutError:
        raise VerifierUnavailable(f"{argv[0]} did not answer within {timeout:g}s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return proc.returncode or 0, output.decode("utf-8", "replace")


class CommitVerifier:
    """Checks commit signatures against a repository's `verify:` keys.

    Stateless between calls apart from where it puts its temporary files; one per worker.
    """

    def __init__(self, workdir: Path, *, timeout: float = 10.0) -> None:
        self.workdir = workdir
        self.timeout = timeout

    async def verify(
        self,
        policy: CommitVerification,
        commit: str,
        signed: SignedCommit,
        *,
        repository: str,
    ) -> str:
        """Who signed (e.g. `ssh key SHA256:...`); raises `UnverifiedCommitError` otherwise."""
        requirement = f"repository {repository} requires commits signed by an allowed key"
        signature = signed.signature
        if signature is None:
            raise UnverifiedCommitError(f"commit {_short(commit)} is not signed ({requirement})")
        tmp = await asyncio.to_thread(self._tempdir)
        try:
            if signature.lstrip().startswith(_SSH_ARMOR):
                if not policy.ssh_allowed_signers:
                    raise UnverifiedCommitError(
                        f"commit {_short(commit)} has an SSH signature but repository "
                        f"{repository} allows only GPG keys"
                    )
                return await self._verify_ssh(policy, commit, signed, signature, tmp, requirement)
            if signature.lstrip().startswith(_PGP_ARMOR):
                if not policy.gpg_public_keys:
                    raise UnverifiedCommitError(
                        f"commit {_short(commit)} has a GPG signature but repository "
                        f"{repository} allows only SSH keys"
                    )
                return await self._verify_gpg(policy, commit, signed, signature, tmp, requirement)
            raise UnverifiedCommitError(
                f"commit {_short(commit)} carries a signature of an unsupported format "
                f"({requirement}: SSH or GPG)"
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    def _tempdir(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="verify-", dir=self.workdir))

    async def _verify_ssh(
        self,
        policy: CommitVerification,
        commit: str,
        signed: SignedCommit,
        signature: bytes,
        tmp: Path,
        requirement: str,
    ) -> str:
        allowed = tmp / "allowed_signers"
        sig = tmp / "commit.sig"
        lines = "".join(
            f'{_PRINCIPAL} namespaces="{SSH_NAMESPACE}" {key.strip()}\n'
            for key in policy.ssh_allowed_signers
        )
        await asyncio.to_thread(allowed.write_text, lines, "utf-8")
        await asyncio.to_thread(sig.write_bytes, signature)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp)}
        argv = ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", _PRINCIPAL]
        argv += ["-n", SSH_NAMESPACE, "-s", str(sig)]
        code, output = await _run(
            argv, cwd=tmp, stdin=signed.payload, timeout=self.timeout, env=env
        )
        if code == 0:
            found = _FINGERPRINT.search(output)
            return f"ssh key {found.group(1)}" if found else "an allowed ssh key"
        # Which key signed, and is the signature even intact? check-novalidate says.
        argv = ["ssh-keygen", "-Y", "check-novalidate", "-n", SSH_NAMESPACE, "-s", str(sig)]
        check, detail = await _run(
            argv, cwd=tmp, stdin=signed.payload, timeout=self.timeout, env=env
        )
        found = _FINGERPRINT.search(detail)
        if check == 0 and found:
            raise UnverifiedCommitError(
                f"commit {_short(commit)} is signed by SSH key {found.group(1)}, which is not "
                f"an allowed key ({requirement})"
            )
        raise UnverifiedCommitError(
            f"commit {_short(commit)} has an SSH signature that does not match its content "
            f"({requirement})"
        )

    async def _verify_gpg(
        self,
        policy: CommitVerification,
        commit: str,
        signed: SignedCommit,
        signature: bytes,
        tmp: Path,
        requirement: str,
    ) -> str:
        # gpg derives its agent socket path from the home directory, and a Unix socket path
        # is limited to ~108 bytes: a deep cache directory would make gpg fail. So the
        # throwaway keyring lives in a short directory of the system's temp dir.
        home = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="gitops-gpg-"))
        try:
            return await self._verify_gpg_in(
                policy, commit, signed, signature, tmp, home, requirement
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, home, True)

    async def _verify_gpg_in(
        self,
        policy: CommitVerification,
        commit: str,
        signed: SignedCommit,
        signature: bytes,
        tmp: Path,
        home: Path,
        requirement: str,
    ) -> str:
        keys = tmp / "keys.asc"
        sig = tmp / "commit.sig"
        await asyncio.to_thread(keys.write_text, "\n".join(policy.gpg_public_keys), "utf-8")
        await asyncio.to_thread(sig.write_bytes, signature)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GNUPGHOME": str(home)}
        base = ["gpg", "--batch", "--no-tty", "--no-autostart", "--homedir", str(home)]
        code, output = await _run(
            [*base, "--import", str(keys)], cwd=tmp, stdin=b"", timeout=self.timeout, env=env
        )
        if code != 0:
            raise UnverifiedCommitError(
                f"the gpg_public_keys of the repository could not be imported: {output.strip()}"
            )
        _, status = await _run(
            [*base, "--status-fd", "1", "--verify", str(sig), "-"],
            cwd=tmp,
            stdin=signed.payload,
            timeout=self.timeout,
            env=env,
        )
        fields = {
            parts[1]: parts[2:]
            for line in status.splitlines()
            if line.startswith("[GNUPG:] ") and len(parts := line.split()) >= 2
        }
        if "VALIDSIG" in fields and "BADSIG" not in fields:
            return f"gpg key {fields['VALIDSIG'][0] if fields['VALIDSIG'] else ''}".strip()
        if "BADSIG" in fields:
            raise UnverifiedCommitError(
                f"commit {_short(commit)} has a GPG signature that does not match its "
                f"content ({requirement})"
            )
        key = (fields.get("ERRSIG") or fields.get("NO_PUBKEY") or ["an unknown key"])[0]
        raise UnverifiedCommitError(
            f"commit {_short(commit)} is signed by GPG key {key}, which is not an allowed "
            f"key ({requirement})"
        )
