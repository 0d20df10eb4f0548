"""The figures a reliability scenario reports, for `bench/reliability_report.py`.

Each scenario appends one JSON line to the file named by `$GITOPS_RELIABILITY_OUT` (when
set) and prints it, so `pytest -s` shows the counts and the report can be regenerated
from a run instead of being written by hand. The fault tests use the same line format:
`{scenario, promise, tried, accepted, lost, duplicated, errors_5xx, notes}`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

OUT_ENV = "GITOPS_RELIABILITY_OUT"


def record(
    scenario: str,
    promise: str,
    *,
    tried: int,
    accepted: int,
    lost: int = 0,
    duplicated: int = 0,
    errors_5xx: int = 0,
    notes: str = "",
) -> None:
    """Print the scenario's figures and append them to `$GITOPS_RELIABILITY_OUT`."""
    line = json.dumps(
        {
            "scenario": scenario,
            "promise": promise,
            "tried": tried,
            "accepted": accepted,
            "lost": lost,
            "duplicated": duplicated,
            "errors_5xx": errors_5xx,
            "notes": notes,
        }
    )
    print(f"\n[reliability] {line}")  # `pytest -s` shows the counts
    target = os.environ.get(OUT_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(line + "\n")
