"""The git cache over SSH against a real sshd: deploy keys in, host keys always checked.

Every refusal must say what is wrong where a user can act on it: a key the server does
not accept, a host key known_hosts does not have (naming the key's fingerprint), a host
key that changed (naming both fingerprints). Nothing is ever trusted on first use.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from syncer.gitcache import GitCache, PermanentGitError, TransientGitError
from syncer.giterrors import CredentialsRefusedError
from syncer.gitssh import HostKeyError
from testbed.sshd import SshServer, keygen
from tests.auth.conftest import ssh_repo
from tests.support.git import WorkingCopy

MakeCopy = Callable[[str], WorkingCopy]


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[GitCache]:
    async with GitCache(tmp_path / "cache", timeout=20) as opened:
        yield opened


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
async def test_clone_incremental_fetch_and_ls_remote_with_a_deploy_key(
    kind: str, tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, cache: GitCache
) -> None:
    key = keygen(tmp_path / f"id_{kind}", kind)
    sshd.authorize(key.with_suffix(".pub"))
    wc = ssh_copy("platform")
    first = wc.commit_and_push({"apps/web/cm.yaml": "kind: ConfigMap\n"})
    repo = ssh_repo(sshd, "platform", key)

    assert await cache.ls_remote(repo) == {"refs/heads/main": first}
    assert await cache.resolve(repo, "main") == first
    assert await cache.read_files(repo.url, first, "apps") == {
        "apps/web/cm.yaml": b"kind: ConfigMap\n"
    }

    second = wc.commit_and_push({"apps/web/cm.yaml": "kind: ConfigMap\ndata: {}\n"})
    assert await cache.ls_remote(repo) == {"refs/heads/main": second}
    assert await cache.resolve(repo, "main") == second
    assert await cache.is_ancestor(repo.url, first, second)
    assert await cache.read_files(repo.url, second, "apps/web/cm.yaml") == {
        "apps/web/cm.yaml": b"kind: ConfigMap\ndata: {}\n"
    }


async def test_a_key_with_a_passphrase_is_used_without_any_prompt(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, cache: GitCache
) -> None:
    key = keygen(tmp_path / "locked", passphrase="correct horse")
    sshd.authorize(key.with_suffix(".pub"))
    pushed = ssh_copy("locked").commit_and_push({"a.yaml": "a: 1\n"})
    repo = ssh_repo(sshd, "locked", key, passphrase={"value": "correct horse"})

    assert await cache.resolve(repo, "main") == pushed


async def test_a_key_the_server_does_not_accept_is_refused_clearly(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path, cache: GitCache
) -> None:
    ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    stranger = keygen(tmp_path / "stranger")

    with pytest.raises(CredentialsRefusedError, match="refused the key") as caught:
        await cache.resolve(ssh_repo(sshd, "platform", stranger), "main")

    assert "Permission denied (publickey)" in str(caught.value)
    assert not list((tmp_path / "cache").rglob("*.pack"))


async def test_an_unknown_host_key_fails_naming_the_host_and_its_fingerprint(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path, cache: GitCache
) -> None:
    ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    other_server_key = keygen(tmp_path / "elsewhere")
    kind, blob = other_server_key.with_suffix(".pub").read_text().split()[:2]
    pinned_elsewhere = f"[git.example.com]:{sshd.port} {kind} {blob}"

    with pytest.raises(HostKeyError) as caught:
        await cache.ls_remote(ssh_repo(sshd, "platform", deploy_key, known_hosts=pinned_elsewhere))

    message = str(caught.value)
    assert f"the host key of [127.0.0.1]:{sshd.port} is unknown" in message
    assert sshd.fingerprint() in message
    assert "ssh-keyscan" in message


async def test_a_changed_host_key_fails_naming_both_fingerprints_and_fetches_nothing(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path, cache: GitCache
) -> None:
    wc = ssh_copy("platform")
    first = wc.commit_and_push({"a.yaml": "a: 1\n"})
    repo = ssh_repo(sshd, "platform", deploy_key)
    assert await cache.resolve(repo, "main") == first
    pinned = sshd.fingerprint()

    sshd.restart(new_host_key=True)
    wc.commit_and_push({"a.yaml": "a: 2\n"})

    with pytest.raises(HostKeyError) as caught:
        await cache.resolve(repo, "main")
    message = str(caught.value)
    assert f"the host key of [127.0.0.1]:{sshd.port} has CHANGED" in message
    assert sshd.fingerprint() in message and pinned in message
    with pytest.raises(HostKeyError):
        await cache.ls_remote(repo)
    assert await cache.read_files(repo.url, first, "a.yaml") == {"a.yaml": b"a: 1\n"}


async def test_a_changed_key_is_recognised_behind_a_hashed_known_hosts_entry(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path, cache: GitCache
) -> None:
    head = ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line() + "\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known_hosts)], check=True)
    assert known_hosts.read_text().startswith("|1|")  # as `ssh-keygen -H` leaves it
    repo = ssh_repo(sshd, "platform", deploy_key, known_hosts={"file": str(known_hosts)})
    assert await cache.ls_remote(repo) == {"refs/heads/main": head}

    sshd.restart(new_host_key=True)

    with pytest.raises(HostKeyError, match="has CHANGED") as caught:
        await cache.ls_remote(repo)
    assert sshd.fingerprint() in str(caught.value)


async def test_an_ssh_server_that_is_down_is_transient(
    sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path, cache: GitCache
) -> None:
    ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    repo = ssh_repo(sshd, "platform", deploy_key)
    sshd.stop()

    with pytest.raises(TransientGitError, match="Connection refused"):
        await cache.ls_remote(repo)


async def test_the_key_is_written_only_to_a_private_file_removed_on_close(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path
) -> None:
    ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    repo = ssh_repo(sshd, "platform", deploy_key)
    async with GitCache(tmp_path / "cache") as cache:
        await cache.ls_remote(repo)
        mirror = cache._mirror_for_url(repo.url)  # what the ssh process was given
        assert mirror.access.ssh is not None
        key_file = mirror.access.ssh.key_file
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert key_file.parent.parent.stat().st_mode & 0o777 == 0o700
    assert not key_file.exists()
    assert not key_file.parent.parent.exists()


async def test_an_ssh_url_without_ssh_auth_is_refused_before_connecting(
    sshd: SshServer, ssh_copy: MakeCopy, cache: GitCache
) -> None:
    from schemas.config import RepositoryConfig

    ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})

    connections = sshd.log.read_text().count("Connection from")

    with pytest.raises(PermanentGitError, match=r"no 'auth\.ssh'"):
        await cache.ls_remote(RepositoryConfig(url=sshd.url("platform")))
    assert sshd.log.read_text().count("Connection from") == connections


async def test_an_unknown_host_stays_unknown_never_trusted_on_first_use(
    tmp_path: Path, sshd: SshServer, ssh_copy: MakeCopy, deploy_key: Path, cache: GitCache
) -> None:
    ssh_copy("platform").commit_and_push({"a.yaml": "a: 1\n"})
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("# nothing pinned for this server yet\n")
    repo = ssh_repo(sshd, "platform", deploy_key, known_hosts={"file": str(known_hosts)})

    for _ in range(2):
        with pytest.raises(HostKeyError, match="is unknown"):
            await cache.resolve(repo, "main")

    assert known_hosts.read_text() == "# nothing pinned for this server yet\n"
    assert not list((tmp_path / "cache").rglob("*.pack"))
