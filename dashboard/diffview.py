"""The live diff as the App page shows it: `gitops diff`'s own text, line by line, classed
for colour (and prefixed `+`/`-` as printed, so colour is never the only sign)."""

from __future__ import annotations

from syncer.livediff import LiveDiff

Line = tuple[str, str]


def classify(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "ctx"


def diff_lines(found: LiveDiff) -> list[list[Line]]:
    """Per drifted object, its unified diff as (class, text) lines."""
    return [
        [(classify(line), line) for line in text.splitlines()] for text in found.unified_diffs()
    ]


def basis(found: LiveDiff, branch: str) -> str:
    return "last applied" if found.applied else f"head of {branch}, never applied"
