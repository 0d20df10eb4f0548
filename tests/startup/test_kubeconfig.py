"""A kubeconfig that cannot be loaded stops `gitops syncer` and `gitops diff` with one
line naming the cluster, the file and the key to fix; exit 2 (a configuration error)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.startup.conftest import Run, gitops


def syncer(config: Path) -> Run:
    return gitops("syncer", "--no-http", "--config", str(config))


def error_line(run: Run) -> str:
    """The one JSON error line a syncer logs when it cannot start."""
    errors = [line for line in run.json_lines() if line["level"] == "error"]
    assert len(errors) == 1, run.stderr
    return str(errors[0]["message"])


def test_syncer_with_a_missing_kubeconfig_names_the_file_and_exits_2(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.kubeconfig"
    config = write_config(kubeconfig=str(missing))

    run = syncer(config)

    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    message = error_line(run)
    assert f"{config}: cluster dev: cannot load kubeconfig {missing}: no such file" in message
    assert "(clusters.dev.kubeconfig)" in message


def test_syncer_with_a_kubeconfig_that_is_not_yaml_names_the_line_and_exits_2(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("apiVersion: v1\nkind: [Config\n  : :\n")

    run = syncer(write_config(kubeconfig=str(broken)))

    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert f"cannot load kubeconfig {broken}: not valid YAML (line 3, column 3" in error_line(run)


def test_syncer_with_a_directory_for_a_kubeconfig_says_so_and_exits_2(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    run = syncer(write_config(kubeconfig=str(tmp_path)))

    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert f"cannot load kubeconfig {tmp_path}: is a directory, not a file" in error_line(run)


def test_syncer_with_an_unknown_context_lists_the_contexts_and_exits_2(
    write_config: Callable[..., Path],
) -> None:
    config = write_config(context="nosuch")
    kubeconfig = json.loads((config.parent / "kubeconfig").read_text())
    known = ", ".join(c["name"] for c in kubeconfig["contexts"])

    run = syncer(config)

    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    message = error_line(run)
    assert f"no context 'nosuch' (contexts: {known}) (clusters.dev.context)" in message


def test_diff_with_a_missing_kubeconfig_names_the_file_and_exits_2(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.kubeconfig"

    run = gitops("diff", "web", "--config", str(write_config(kubeconfig=str(missing))))

    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.strip() == (
        f"gitops diff: app 'web': cluster dev: cannot load kubeconfig {missing}: no such file"
        " (clusters.dev.kubeconfig)"
    )
