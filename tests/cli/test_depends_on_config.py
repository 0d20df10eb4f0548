"""`depends_on` cycles and unknown names are configuration errors with file:line, exit 2."""

from __future__ import annotations

from pathlib import Path

from schemas.dependencies import dependency_problems
from tests.cli.test_config_check import gitops

CONFIG = """\
clusters: {prod: {kubeconfig: /etc/gitops/prod.kubeconfig}}
repositories: {platform: {url: https://git.example/acme/platform.git}}
apps:
  database:
    repo: platform
    cluster: prod
    depends_on: [operators]
  operators:
    repo: platform
    cluster: prod
    depends_on:
      - crds
      - database
  crds: {repo: platform, cluster: prod}
  shop:
    repo: platform
    cluster: prod
    depends_on: [databse]
"""


def test_a_cycle_and_an_unknown_app_are_named_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "gitops.yaml"
    path.write_text(CONFIG)
    for command in (("config", "check", str(path)), ("syncer", "--config", str(path))):
        result = gitops(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.splitlines()[:2] == [
            f"{path}:7: apps.database.depends_on: dependency cycle database -> operators"
            " -> database: remove one of these depends_on entries",
            f"{path}:18: apps.shop.depends_on: unknown app 'databse'"
            " (known: crds, database, operators, shop)",
        ], result.stderr
        assert "Traceback" not in result.stderr


def test_a_valid_chain_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "gitops.yaml"
    path.write_text(CONFIG.replace("      - database\n", "").replace("databse", "database"))
    result = gitops("config", "check", str(path))
    assert result.returncode == 0, result.stderr


def test_every_cycle_is_reported_once_from_its_first_app() -> None:
    problems = dependency_problems(
        {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": ["a", "f"], "f": ["e"]}
    )
    assert [(p.app, p.index, p.message.split(":")[0]) for p in problems] == [
        ("a", 0, "dependency cycle a -> b -> c -> a"),
        ("d", 0, "dependency cycle d -> d"),
        ("e", 1, "dependency cycle e -> f -> e"),
    ]
