"""`gitops config check` tells a user whether a file is valid, and everything wrong with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def gitops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_example_config_is_valid_and_summarised() -> None:
    result = gitops("config", "check", "examples/gitops.yaml")
    assert result.returncode == 0, result.stderr
    assert "apps (2):" in result.stdout
    assert "guestbook: examples@main:apps/guestbook -> local/guestbook" in result.stdout


def test_broken_config_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    text = (ROOT / "examples/gitops.yaml").read_text()
    text = text.replace(
        "cluster: local\n    namespace: guestbook", "cluster: locl\n    namespace: guestbook"
    )
    text = text.replace("interval: 2m", "interval: soon")
    text = text.replace("  partitions: 12", "  partitions: 12\n  partitons: 3")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = gitops("config", "check", str(bad))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(bad))]
    assert len(errors) == 3, result.stderr
    assert any("kafka.partitons: unknown key" in e for e in errors)
    assert any("apps.guestbook.cluster: unknown cluster 'locl' (known: local)" in e for e in errors)
    assert any("apps.monitoring.interval: invalid duration 'soon'" in e for e in errors)
    assert "Traceback" not in result.stderr


def test_every_subcommand_has_help() -> None:
    for command in (
        ["receiver"],
        ["syncer"],
        ["up"],
        ["devcluster"],
        ["config", "check"],
        ["schemas", "export"],
        ["events", "tail"],
        ["apps"],
        ["sync"],
        ["diff"],
    ):
        result = gitops(*command, "--help")
        assert result.returncode == 0, command
        assert "usage: gitops" in result.stdout


def test_schemas_export_writes_one_file_per_event_type(tmp_path: Path) -> None:
    result = gitops("schemas", "export", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "config.schema.json" in names
    assert "gitops.sync.succeeded.schema.json" in names
    assert "gitops.sync-requests.dlq.schema.json" in names
    assert "gitops.app.status.schema.json" in names
    assert "gitops.app.generated.schema.json" in names
    assert "gitops.notification.failed.schema.json" in names
    assert len(names) == 13
