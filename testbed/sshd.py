"""A real OpenSSH server on 127.0.0.1 serving bare repositories through `git-upload-pack`.

Debian's `openssh-server` (`/usr/sbin/sshd`), run in the foreground with a config of its
own: its own host key, port and AuthorizedKeysFile, so it needs nothing from the
machine's ssh setup. `StrictModes no` because the key files live under pytest's
temporary directories. The login user is whoever runs the tests (sshd only logs in
users that exist); repositories are addressed by absolute path.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from testbed.processes import free_port

SSHD = "/usr/sbin/sshd"


def sshd_available() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh") is not None


def keygen(path: Path, kind: str = "ed25519", *, passphrase: str = "") -> Path:
    """A fresh key pair at `path` (and `path`.pub), as `ssh-keygen` makes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    bits = ["-b", "3072"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *bits, "-N", passphrase, "-C", "test", "-f", str(path)],
        check=True,
    )
    return path


class SshServer:
    """`sshd -D` on a free port; `restart(new_host_key=True)` rotates its host key."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = root / "host_ed25519"
        self.authorized_keys = root / "authorized_keys"
        self.repos = root / "repos"
        self.log = root / "sshd.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- what tests use ------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.repos / name}.git"

    def scp_url(self, name: str) -> str:
        """The scp-like form (`user@host:path`); port 22 only, so for config checks."""
        return f"{self.user}@127.0.0.1:{self.repos / name}.git"

    def known_hosts_line(self) -> str:
        """The line `ssh-keyscan -p PORT 127.0.0.1` prints for this server's host key."""
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}"

    def fingerprint(self) -> str:
        answer = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key.with_suffix(".pub"))],
            check=True,
            capture_output=True,
            text=True,
        )
        return answer.stdout.split()[1]

    def authorize(self, public_key: Path) -> None:
        """Let the key's holder in, restricted as a deploy key is (no pty, no forwarding)."""
        line = public_key.read_text().strip()
        with self.authorized_keys.open("a") as sink:
            sink.write(f"restrict {line}\n")

    def create_repo(self, name: str, *, default_branch: str = "main") -> Path:
        path = self.repos / f"{name}.git"
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
            check=True,
        )
        return path

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.repos.mkdir(exist_ok=True)
        self.authorized_keys.touch()
        if not self.host_key.exists():
            keygen(self.host_key)
        config = self.root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    f"AllowUsers {self.user}",
                    "StrictModes no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "AcceptEnv GIT_PROTOCOL",
                    "MaxStartups 100:30:200",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        self._process = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    if conn.recv(64).startswith(b"SSH-2.0"):
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"sshd did not listen on {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self, *, new_host_key: bool = False) -> None:
        self.stop()
        if new_host_key:
            keygen(self.host_key)
        self.start()

    def __enter__(self) -> SshServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
