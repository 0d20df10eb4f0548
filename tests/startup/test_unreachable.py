"""`gitops diff` against a Git host or an API server that refuses connections (closed
ports on 127.0.0.1): one line naming what did not answer, exit 3, never 1 (drift)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.startup.conftest import closed_port, gitops


def test_diff_with_the_git_host_down_names_it_and_exits_3(
    write_config: Callable[..., Path],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/acme/platform.git"

    run = gitops("diff", "web", "--config", str(write_config(repo_url=url)))

    assert run.code == 3, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.strip() == (
        f"gitops diff: app 'web': fetching branch main from {url}: connection refused"
    )


def test_diff_with_the_api_server_refusing_names_the_cluster_and_exits_3(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    kubeconfig = json.loads((config.parent / "kubeconfig").read_text())
    port = closed_port()
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    (config.parent / "kubeconfig").write_text(json.dumps(kubeconfig))

    run = gitops("diff", "web", "--config", str(config))

    assert run.code == 3, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    message = run.stderr.strip()
    assert message.startswith("gitops diff: app 'web': cluster dev: GET "), message
    assert f"Connect call failed ('127.0.0.1', {port})" in message
    assert message.endswith("gave up after 2 attempts (syncer.api_attempts)"), message
