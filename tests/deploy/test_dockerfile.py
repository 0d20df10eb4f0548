"""The container image, read from the Dockerfile: its entrypoint is our CLI, it runs as
the unprivileged user the chart expects, and it ships every package.

No Docker engine runs here, so the Dockerfile is parsed (instructions, continuation
lines, JSON exec form) and checked against pyproject.toml, the CLI and the chart.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops.cli import build_parser
from testbed import versions
from tests.deploy.rendering import CHART, REPO

DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int

    def exec_form(self) -> list[str]:
        form = json.loads(self.arguments)
        assert isinstance(form, list), f"{self.keyword} must use the JSON exec form"
        return [str(part) for part in form]


def _instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    instructions: list[Instruction] = []
    stage = -1
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return instructions


def _final_stage() -> list[Instruction]:
    instructions = _instructions()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _one(keyword: str) -> Instruction:
    found = [i for i in _final_stage() if i.keyword == keyword]
    assert found, f"the final stage has no {keyword}"
    return found[-1]


def test_entrypoint_is_the_gitops_console_script() -> None:
    scripts = _pyproject()["project"]["scripts"]

    assert _one("ENTRYPOINT").exec_form() == ["gitops"]
    assert scripts["gitops"] == "gitops.cli:main"


def test_default_command_starts_the_receiver() -> None:
    command = _one("CMD").exec_form()

    assert command == ["receiver"]
    assert build_parser().parse_args(command).command == "receiver"


def test_image_runs_as_the_non_root_user_the_chart_expects() -> None:
    user = _one("USER").arguments
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets runAsNonRoot verify it"
    assert int(uid) == chart_values["podSecurityContext"]["runAsUser"]
    assert int(gid) == chart_values["podSecurityContext"]["runAsGroup"]


def test_runtime_is_python_slim_with_the_git_cli() -> None:
    args = {
        i.arguments.split("=", 1)[0]: i.arguments.split("=", 1)[1]
        for i in _instructions()
        if i.keyword == "ARG" and "=" in i.arguments
    }
    base = _one("FROM").arguments.split()[0]
    run = " ".join(i.arguments for i in _final_stage() if i.keyword == "RUN")

    assert args.get(base.strip("${}"), base) == "python:3.11-slim"
    assert "apt-get install" in run and " git " in f" {run} "
    assert "rm -rf /var/lib/apt/lists/*" in run


def test_image_ships_the_sops_the_tests_run_on_the_path() -> None:
    args = dict(
        i.arguments.split("=", 1)
        for i in _instructions()
        if i.keyword == "ARG" and "=" in i.arguments
    )
    copies = [i.arguments.split() for i in _final_stage() if i.keyword == "COPY"]

    assert args["SOPS_VERSION"] == versions.SOPS
    assert ["--from=sops", "/out/sops", "/usr/local/bin/sops"] in copies


def _copy_sources() -> set[str]:
    """Paths copied from the build context (not from another stage), without destinations."""
    return {
        source.rstrip("/")
        for i in _instructions()
        if i.keyword == "COPY" and "--from" not in i.arguments
        for source in i.arguments.split()[:-1]
    }


def test_image_installs_every_package_of_the_distribution() -> None:
    find = _pyproject()["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in find["include"]}

    assert packages <= _copy_sources()
    assert {"pyproject.toml", "README.md"} <= _copy_sources()


def test_build_context_lets_through_exactly_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}

    assert lines[0] == "*", "an allow-list keeps .git, venvs and caches out of the context"
    assert _copy_sources() == allowed
    for source in _copy_sources():
        assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
