"""Which app rows a page shows, and in what order: filtered and sorted on the server.

A browser lays out a table of 1,000 rows in seconds, not milliseconds, so the Apps page
holds one page of rows and fetches the next on demand (docs/performance.md, dashboard).
Filtering therefore has to happen here, over every app, not in the browser over the rows
it happens to hold; the page's script applies the same rules (`data-text`, the state
attributes) to the rows live updates replace.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.board import AppRow

PAGE_ROWS = 100
"""Rows per page of the Apps table and of the Events table."""

FAILING = frozenset({"failed", "dead-letter"})
PROGRESSING = frozenset({"progressing", "degraded", "missing"})


@dataclass(frozen=True)
class Slice:
    """One page of the matching rows, and what the page says about the rest."""

    rows: list[AppRow]
    matching: int
    total: int
    next_offset: int | None


def search_text(row: AppRow) -> str:
    """What the text filter matches: the fields the filter's placeholder names, lowercased."""
    parts = (row.name, row.repo, row.repo_url, row.branch, row.path, row.cluster, row.app_set)
    return " ".join(part for part in parts if part).lower()


def matches(row: AppRow, q: str, state: str) -> bool:
    """The Apps page's filter: every word of `q` in the row's text, and the chosen state."""
    text = search_text(row)
    if any(word not in text for word in q.lower().split()):
        return False
    if not state:
        return True
    if state == "drifted":
        return row.drift_state == "drifted"
    if state == "pending":
        return row.pending is not None
    if state == "suspended":
        return row.hold is not None
    return row.state == state


def rank(row: AppRow) -> int:
    """Failing apps first, then those on their way or not healthy, then the rest."""
    if row.state in FAILING:
        return 0
    if row.pending is not None or row.drift is not None or row.health in PROGRESSING:
        return 1
    return 2


def select(rows: list[AppRow], *, q: str, state: str, offset: int, limit: int) -> Slice:
    """The page of matching rows from `offset`, in rank then name order."""
    found = sorted((row for row in rows if matches(row, q, state)), key=lambda r: (rank(r), r.name))
    start = max(offset, 0)
    shown = found[start : start + limit]
    end = start + len(shown)
    return Slice(shown, len(found), len(rows), end if end < len(found) else None)
