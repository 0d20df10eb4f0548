"""Commit verification: only commits signed by a configured key may be applied.

Commits are signed the way developers sign them (`git commit -S`, SSH keys with
`gpg.format=ssh`, or GnuPG keys), pushed to the bench git server, and read back through
the GitCache, so the signed bytes are exactly what a real sync would verify.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.config import CommitVerification, RepositoryConfig
from syncer.gitcache import GitCache
from syncer.verification import CommitVerifier, SignedCommit, UnverifiedCommitError
from tests.support.git import WorkingCopy

FILES = {"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"}


def ssh_key(directory: Path, name: str) -> tuple[Path, str]:
    """A fresh ed25519 key: (private key path, public key line)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(key)],
        check=True,
    )
    return key, key.with_suffix(".pub").read_text().strip()


def fingerprint(key: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key)], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]


def ssh_signed_commit(repo: WorkingCopy, key: Path, files: dict[str, str | bytes | None]) -> str:
    repo.write(files)
    repo.git("add", "--all")
    repo.git(
        "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}",
        "commit", "--quiet", "-S", "-m", "signed change",
    )  # fmt: skip
    repo.push()
    return repo.head()


async def read_signed(cache: GitCache, repo: WorkingCopy) -> tuple[str, SignedCommit]:
    commit = await cache.resolve(RepositoryConfig(url=repo.remote_url), repo.branch)
    signature, payload = await cache.commit_signature(repo.remote_url, commit)
    return commit, SignedCommit(signature, payload)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    return {name: ssh_key(tmp_path / "keys", name) for name in ("alice", "mallory")}


@pytest.fixture
def verifier(tmp_path: Path) -> CommitVerifier:
    return CommitVerifier(tmp_path / "verify")


async def test_commit_signed_by_an_allowed_ssh_key_is_accepted(
    working_copy: Callable[..., WorkingCopy],
    cache: GitCache,
    keys: dict[str, tuple[Path, str]],
    verifier: CommitVerifier,
) -> None:
    repo = working_copy()
    key, public = keys["alice"]
    ssh_signed_commit(repo, key, FILES)
    commit, signed = await read_signed(cache, repo)
    policy = CommitVerification(ssh_allowed_signers=[keys["mallory"][1], public])

    signer = await verifier.verify(policy, commit, signed, repository="platform")

    assert signer == f"ssh key {fingerprint(key)}"


async def test_unsigned_commit_is_rejected(
    working_copy: Callable[..., WorkingCopy],
    cache: GitCache,
    keys: dict[str, tuple[Path, str]],
    verifier: CommitVerifier,
) -> None:
    repo = working_copy()
    sha = repo.commit_and_push(FILES)
    commit, signed = await read_signed(cache, repo)
    policy = CommitVerification(ssh_allowed_signers=[keys["alice"][1]])

    with pytest.raises(UnverifiedCommitError) as rejected:
        await verifier.verify(policy, commit, signed, repository="platform")

    assert str(rejected.value) == (
        f"commit {sha[:7]} is not signed "
        "(repository platform requires commits signed by an allowed key)"
    )


async def test_commit_signed_by_another_key_is_rejected_naming_that_key(
    working_copy: Callable[..., WorkingCopy],
    cache: GitCache,
    keys: dict[str, tuple[Path, str]],
    verifier: CommitVerifier,
) -> None:
    repo = working_copy()
    mallory, _ = keys["mallory"]
    sha = ssh_signed_commit(repo, mallory, FILES)
    commit, signed = await read_signed(cache, repo)
    policy = CommitVerification(ssh_allowed_signers=[keys["alice"][1]])

    with pytest.raises(UnverifiedCommitError) as rejected:
        await verifier.verify(policy, commit, signed, repository="platform")

    assert str(rejected.value) == (
        f"commit {sha[:7]} is signed by SSH key {fingerprint(mallory)}, which is not an "
        "allowed key (repository platform requires commits signed by an allowed key)"
    )


async def test_signature_that_does_not_match_the_content_is_rejected(
    working_copy: Callable[..., WorkingCopy],
    cache: GitCache,
    keys: dict[str, tuple[Path, str]],
    verifier: CommitVerifier,
) -> None:
    repo = working_copy()
    key, public = keys["alice"]
    ssh_signed_commit(repo, key, FILES)
    commit, signed = await read_signed(cache, repo)
    tampered = SignedCommit(signed.signature, signed.payload.replace(b"signed", b"forged"))
    policy = CommitVerification(ssh_allowed_signers=[public])

    with pytest.raises(UnverifiedCommitError, match="does not match its content"):
        await verifier.verify(policy, commit, tampered, repository="platform")


@pytest.fixture
def gnupg(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A developer's GnuPG home with one signing key; its agent is stopped afterwards."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Dev <dev@example.test>",
         "ed25519", "sign", "never"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    try:
        yield env
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)


def gpg_export(env: dict[str, str]) -> str:
    return subprocess.run(
        ["gpg", "--armor", "--export", "dev@example.test"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip


async def test_gpg_signed_commit_is_accepted_only_with_its_key_configured(
    working_copy: Callable[..., WorkingCopy],
    cache: GitCache,
    gnupg: dict[str, str],
    verifier: CommitVerifier,
    keys: dict[str, tuple[Path, str]],
) -> None:
    repo = working_copy()
    repo.write(FILES)
    repo.git("add", "--all")
    subprocess.run(
        ["git", "-c", "user.signingkey=dev@example.test", "commit", "--quiet", "-S", "-m", "gpg"],
        cwd=repo.path, check=True, capture_output=True,
        env={**gnupg, "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.test",
             "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.test"},
    )  # fmt: skip
    repo.push()
    commit, signed = await read_signed(cache, repo)

    signer = await verifier.verify(
        CommitVerification(gpg_public_keys=[gpg_export(gnupg)]),
        commit,
        signed,
        repository="platform",
    )
    assert signer.startswith("gpg key ")

    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Other <other@example.test>",
         "ed25519", "sign", "never"],
        check=True, capture_output=True, env=gnupg,
    )  # fmt: skip
    other = subprocess.run(
        ["gpg", "--armor", "--export", "other@example.test"],
        check=True, capture_output=True, text=True, env=gnupg,
    ).stdout  # fmt: skip
    with pytest.raises(UnverifiedCommitError, match=r"is signed by GPG key \w+, which is not an"):
        await verifier.verify(
            CommitVerification(gpg_public_keys=[other]), commit, signed, repository="platform"
        )
    with pytest.raises(UnverifiedCommitError, match="allows only SSH keys"):
        await verifier.verify(
            CommitVerification(ssh_allowed_signers=[keys["alice"][1]]),
            commit,
            signed,
            repository="platform",
        )
