"""The credential examples users copy from the README and docs/configuration.md are valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from schemas.config import GitopsConfig, is_ssh_url
from schemas.keys import parse_known_hosts

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def auth_examples() -> list[tuple[str, str]]:
    found = []
    for name in ("README.md", "docs/configuration.md"):
        for block in BLOCK.findall((ROOT / name).read_text()):
            if "auth:" in block and "repositories:" in block:
                found.append((name, block))
    return found


def test_every_auth_method_has_an_example_in_both_documents() -> None:
    for name in ("README.md", "docs/configuration.md"):
        text = "".join(block for where, block in auth_examples() if where == name)
        for method in ("token:", "ssh:", "github_app:"):
            assert method in text, f"{name} shows no {method} example"


@pytest.mark.parametrize(("where", "block"), auth_examples())
def test_the_example_is_a_valid_repository_config(where: str, block: str) -> None:
    repositories = yaml.safe_load(block)["repositories"]

    config = GitopsConfig.model_validate({"repositories": repositories})

    for repo in config.repositories.values():
        assert repo.auth is not None
        if is_ssh_url(repo.url):
            assert repo.auth.ssh is not None, where
            if isinstance(repo.auth.ssh.known_hosts, str):
                entries, problems = parse_known_hosts(repo.auth.ssh.known_hosts)
                assert entries and not problems, (where, problems)
