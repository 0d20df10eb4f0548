"""Private repositories: a real OpenSSH server with its own host key and deploy keys, and
a GitHub App token exchange against a fake API checked against GitHub's description."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.config import RepositoryConfig
from testbed.sshd import SshServer, keygen, sshd_available
from tests.support.git import WorkingCopy


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    """`sshd -D` on a free 127.0.0.1 port, its own host key, no key authorised yet."""
    assert sshd_available(), "needs Debian's openssh-server (/usr/sbin/sshd); .ci/run installs it"
    with SshServer(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def deploy_key(tmp_path: Path, sshd: SshServer) -> Path:
    """An ed25519 key the server accepts (its private half; `.pub` beside it)."""
    key = keygen(tmp_path / "keys" / "deploy_ed25519")
    sshd.authorize(key.with_suffix(".pub"))
    return key


@pytest.fixture
def ssh_copy(tmp_path: Path, sshd: SshServer) -> Callable[[str], WorkingCopy]:
    """A bare repository served by sshd and a working copy that pushes to it (by path)."""

    def make(name: str) -> WorkingCopy:
        bare = sshd.create_repo(name)
        return WorkingCopy(tmp_path / "work" / name, str(bare))

    return make


def ssh_repo(
    sshd: SshServer, name: str, key: Path, *, known_hosts: str | None = None, **ssh: object
) -> RepositoryConfig:
    """The repository as a user configures it: deploy key and pinned host key."""
    return RepositoryConfig.model_validate(
        {
            "url": sshd.url(name),
            "auth": {
                "ssh": {
                    "private_key": {"file": str(key)},
                    "known_hosts": known_hosts
                    if known_hosts is not None
                    else sshd.known_hosts_line(),
                    **ssh,
                }
            },
        }
    )
