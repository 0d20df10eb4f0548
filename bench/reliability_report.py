"""Regenerate docs/reliability.md: run the fault and hostile-input suites, write their figures.

The reliability document is our promise to users, so its numbers must come from a run,
not from an editor. This script runs `pytest tests/faults tests/security` with
`GITOPS_RELIABILITY_OUT` pointing at a scratch file; scenarios append one JSON line each
(`{scenario, promise, tried, accepted, lost, duplicated, errors_5xx, notes}`, see
`tests/security/figures.py`). It then renders two tables: the figures of every scenario
that reports them, and every test with its promise (its docstring) and its outcome.

    python bench/reliability_report.py                  # run, then write docs/reliability.md
    python bench/reliability_report.py --figures F.jsonl --junit J.xml   # render only

Exit status: 0 when every test passed and every figure shows nothing lost, duplicated
or answered 5xx; 1 otherwise (the document is written either way, so a regression shows).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("tests/faults", "tests/security")
TARGET = ROOT / "docs" / "reliability.md"
COUNTS = ("tried", "accepted", "lost", "duplicated", "errors_5xx")


@dataclass(frozen=True)
class Figure:
    scenario: str
    promise: str
    tried: int
    accepted: int
    lost: int
    duplicated: int
    errors_5xx: int
    notes: str

    @property
    def kept(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.errors_5xx == 0


@dataclass(frozen=True)
class TestRun:
    suite: str
    module: str
    name: str
    outcome: str  # passed, failed, skipped, xfailed
    seconds: float
    promise: str


def read_figures(path: Path) -> list[Figure]:
    """One `Figure` per JSON line; a malformed line is reported, not silently dropped."""
    figures = []
    if not path.exists():
        return figures
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            figures.append(
                Figure(
                    scenario=str(raw["scenario"]),
                    promise=str(raw.get("promise", "")),
                    notes=str(raw.get("notes", "")),
                    **{key: int(raw.get(key, 0)) for key in COUNTS},
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            print(f"{path}:{number}: skipped a malformed figure line ({exc})", file=sys.stderr)
    return figures


def _docstrings(module_path: Path) -> dict[str, str]:
    """The first docstring line of each test function, read without importing the module."""
    try:
        tree = ast.parse(module_path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    return {
        node.name: (ast.get_docstring(node) or "").strip().splitlines()[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and ast.get_docstring(node)
    }


def read_junit(path: Path) -> list[TestRun]:
    """Every test case of the run, with its promise: its docstring, else its name in words."""
    if not path.exists():
        return []
    runs = []
    docs: dict[Path, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own file
        classname = case.get("classname", "")  # tests.security.test_secrets
        name = case.get("name", "")
        module_path = ROOT / (classname.replace(".", "/") + ".py")
        if module_path not in docs:
            docs[module_path] = _docstrings(module_path)
        functions = docs[module_path]
        base = name.split("[", 1)[0]
        promise = functions.get(base) or base.removeprefix("test_").replace("_", " ")
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif (skipped := case.find("skipped")) is not None:
            outcome = "xfailed" if "xfail" in (skipped.get("type", "") or "") else "skipped"
        parts = classname.split(".")
        runs.append(
            TestRun(
                suite="/".join(parts[:2]),
                module=parts[-1],
                name=name,
                outcome=outcome,
                seconds=float(case.get("time", "0") or 0),
                promise=promise,
            )
        )
    return runs


def run_suites(figures: Path, junit: Path, extra: list[str]) -> tuple[int, float]:
    """Run the suites with the figure file set; returns pytest's exit status and seconds."""
    env = {**os.environ, "GITOPS_RELIABILITY_OUT": str(figures)}
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        f"--junitxml={junit}", *[s for s in SUITES if (ROOT / s).is_dir()], *extra,
    ]  # fmt: skip
    print("running:", " ".join(command[1:]), flush=True)
    started = time.monotonic()
    status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    return status, time.monotonic() - started


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(figures: list[Figure], runs: list[TestRun], seconds: float | None) -> str:
    passed = sum(r.outcome == "passed" for r in runs)
    failed = [r for r in runs if r.outcome == "failed"]
    broken = [f for f in figures if not f.kept]
    total_tried = sum(f.tried for f in figures)
    lines = [
        "# Reliability: what we promise, and the figures of the last run",
        "",
        "Generated by `python bench/reliability_report.py` (it runs `pytest "
        + " ".join(SUITES)
        + "` and collects the figures each scenario writes); do not edit by hand.",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{_commit()}`, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs" + (f", {seconds:.0f} s" if seconds is not None else ""),
        f"- Tests: {passed} passed, {len(failed)} failed, "
        f"{sum(r.outcome in ('skipped', 'xfailed') for r in runs)} skipped or xfailed "
        f"(of {len(runs)})",
        f"- Requests and operations tried across scenarios: {total_tried:,}; lost "
        f"{sum(f.lost for f in figures)}, duplicated {sum(f.duplicated for f in figures)}, "
        f"answered 5xx {sum(f.errors_5xx for f in figures)}",
        "",
        "## Figures by scenario",
        "",
        "`tried`: requests (or syncs, kills...) the scenario attempted; `accepted`: those the"
        " system acknowledged; `lost`: acknowledged but not delivered; `duplicated`: delivered"
        " more than once; `5xx`: server errors answered.",
        "",
        "| scenario | promise | tried | accepted | lost | duplicated | 5xx | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for f in sorted(figures, key=lambda f: f.scenario):
        mark = "" if f.kept else " **(broken)**"
        lines.append(
            f"| {_cell(f.scenario)}{mark} | {_cell(f.promise)} | {f.tried:,} | {f.accepted:,} "
            f"| {f.lost} | {f.duplicated} | {f.errors_5xx} | {_cell(f.notes)} |"
        )
    if not figures:
        lines.append("| (no scenario reported figures in this run) | | | | | | | |")
    lines += ["", "## Every test", ""]
    for suite in sorted({r.suite for r in runs}):
        lines += [
            f"### {suite}",
            "",
            "| test | promise | outcome | s |",
            "| --- | --- | --- | ---: |",
        ]
        for r in sorted((r for r in runs if r.suite == suite), key=lambda r: (r.module, r.name)):
            lines.append(
                f"| `{r.module}::{_cell(r.name)}` | {_cell(r.promise)} | {r.outcome} "
                f"| {r.seconds:.1f} |"
            )
        lines.append("")
    if failed or broken:
        lines += ["## Broken promises in this run", ""]
        lines += [f"- test `{r.module}::{r.name}` failed" for r in failed]
        lines += [f"- scenario {f.scenario}: lost {f.lost}, duplicated {f.duplicated}, "
                  f"5xx {f.errors_5xx}" for f in broken]  # fmt: skip
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, help="render these figure lines, do not run")
    parser.add_argument("--junit", type=Path, help="JUnit XML of the run (with --figures)")
    parser.add_argument("--out", type=Path, default=TARGET, help="where to write the document")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args()

    seconds: float | None = None
    status = 0
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        figures_path = args.figures or Path(scratch) / "figures.jsonl"
        junit_path = args.junit or Path(scratch) / "junit.xml"
        if args.figures is None:
            status, seconds = run_suites(figures_path, junit_path, args.pytest_args)
        figures = read_figures(figures_path)
        runs = read_junit(junit_path)
    document = render(figures, runs, seconds)
    args.out.write_text(document, encoding="utf-8")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    for f in figures:
        print(
            f"  {f.scenario}: tried {f.tried}, accepted {f.accepted}, lost {f.lost}, "
            f"duplicated {f.duplicated}, 5xx {f.errors_5xx}"
        )
    broken = [f for f in figures if not f.kept]
    failed = [r for r in runs if r.outcome == "failed"]
    return 1 if status != 0 or broken or failed else 0


if __name__ == "__main__":
    sys.exit(main())
