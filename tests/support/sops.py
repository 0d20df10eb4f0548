"""The real `sops` and `age-keygen`, built by the test bed from the Go module proxy.

`sops_path` puts sops on PATH for the test (the syncer finds it there, as a user's
syncer would); `age_key` makes a fresh age identity; `encrypt` encrypts a manifest as a
user does before committing it (`sops encrypt --age RECIPIENT`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed import building


@dataclass(frozen=True)
class AgeKey:
    identity: str
    """`AGE-SECRET-KEY-1...`: what the syncer decrypts with."""
    recipient: str
    """`age1...`: what a user encrypts to."""


@pytest.fixture(scope="session")
def sops_binary() -> Path:
    part = building.sops()
    building.build_go(part)  # a no-op when `python -m testbed up` built it
    return part.binary("sops")


@pytest.fixture
def sops_path(sops_binary: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{sops_binary.parent}{os.pathsep}{os.environ['PATH']}")
    return sops_binary


@pytest.fixture(scope="session")
def age_keygen() -> Path:
    part = building.age()
    building.build_go(part)
    return part.binary("age-keygen")


def make_age_key(age_keygen: Path) -> AgeKey:
    out = subprocess.run([str(age_keygen)], check=True, capture_output=True, text=True).stdout
    identity = next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-"))
    recipient = next(
        line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("# public key:")
    )
    return AgeKey(identity, recipient)


@pytest.fixture
def age_key(age_keygen: Path) -> AgeKey:
    return make_age_key(age_keygen)


def encrypt(
    sops_binary: Path, text: str, recipient: str, *, regex: str = "^(data|stringData)$"
) -> str:
    """`text` (YAML) encrypted to `recipient`, values of keys matching `regex` only."""
    done = subprocess.run(
        [
            str(sops_binary),
            "encrypt",
            "--age",
            recipient,
            "--encrypted-regex",
            regex,
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ],
        input=text,
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": os.devnull},
    )
    return done.stdout
