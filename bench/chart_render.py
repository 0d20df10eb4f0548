"""Render and lint figures for the Helm chart, against Helm's own scaffold chart.

What a CI job or a GitOps controller pays to template the chart: the real Helm v4 SDK
(PyPI ``helm-python-sdk``) renders ``charts/gitops-pipeline`` with default values and
with every option on, and the scaffold that ``helm create`` writes is rendered in the
same run as the baseline, so the ratio does not depend on the machine.

    python bench/chart_render.py [--renders 200] [--lints 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python

CHART = Path(__file__).resolve().parents[1] / "charts" / "gitops-pipeline"
ALL_OPTIONS: dict[str, Any] = {
    "receiver": {"ingress": {"enabled": True}},
    "syncer": {"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80}},
    "secrets": {
        "files": [{"name": "webhook", "existingSecret": "gitops-webhook"}],
        "env": [{"name": "GIT_TOKEN", "existingSecret": "gitops-git", "key": "token"}],
    },
}


def per_call_ms(call: Callable[[], object], count: int) -> float:
    """Median milliseconds per call over `count` calls, after one warm-up call."""
    call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=200, help="renders per case")
    parser.add_argument("--lints", type=int, default=20, help="lints per chart")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        with (
            helm_python.Chart.create("baseline", tmp) as baseline,
            helm_python.Chart.load(CHART) as chart,
        ):
            base_ms = per_call_ms(
                lambda: baseline.render({}, name="bench", namespace="bench"), options.renders
            )
            default_ms = per_call_ms(
                lambda: chart.render({}, name="bench", namespace="bench"), options.renders
            )
            full_ms = per_call_ms(
                lambda: chart.render(ALL_OPTIONS, name="bench", namespace="bench"),
                options.renders,
            )
            objects = sum(
                text.count("\nkind: ") + text.startswith("kind: ")
                for text in chart.render(ALL_OPTIONS, name="bench", namespace="bench").values()
            )
        base_lint_ms = per_call_ms(
            lambda: helm_python.lint(Path(tmp) / "baseline", strict=True), options.lints
        )
        lint_ms = per_call_ms(lambda: helm_python.lint(CHART, strict=True), options.lints)

    rows = [
        ("helm scaffold chart render (baseline)", base_ms, ""),
        ("gitops-pipeline render, defaults", default_ms, f"{default_ms / base_ms:.2f}x"),
        (
            "gitops-pipeline render, all options",
            full_ms,
            f"{full_ms / base_ms:.2f}x, {objects} objects",
        ),
        ("helm scaffold lint --strict (baseline)", base_lint_ms, ""),
        ("gitops-pipeline lint --strict", lint_ms, f"{lint_ms / base_lint_ms:.2f}x"),
    ]
    for label, ms, ratio in rows:
        print(f"{label + ':':40} {ms:7.2f} ms" + (f"  ({ratio})" if ratio else ""))


if __name__ == "__main__":
    main()
