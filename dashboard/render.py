"""Server-side HTML: one Jinja2 environment, its filters, and the fragments the live pages
swap in (an app row, an event row), rendered by the same macros as the full pages.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from dashboard.board import AppRow
from dashboard.describe import duration, short, summary
from dashboard.links import commit_url
from dashboard.records import Record

STATES: dict[str, tuple[str, str]] = {
    "succeeded": ("✔", "succeeded"),
    "failed": ("✖", "failed"),
    "skipped": ("↷", "skipped"),
    "never": ("○", "never synced"),
    "pending": ("⟳", "syncing"),
    "requested": ("→", "requested"),
    "push": ("⇪", "push"),
    "drift": ("⚠", "drift"),
    "drifted": ("⚠", "drifted"),
    "in sync": ("✔", "in sync"),
    "unknown": ("?", "unknown"),
    "healthy": ("✔", "healthy"),
    "progressing": ("…", "progressing"),
    "degraded": ("✖", "degraded"),
    "missing": ("✖", "missing"),
    "present": ("●", "present"),
    "dead-letter": ("☠", "dead letter"),
    "suspended": ("⏸", "suspended"),
    "status": ("ⓘ", "status"),
}
"""Every state is told by an icon AND a word, never by colour alone; the icons are repeated
in dashboard.css (`.st-…::before`), which `tests/dashboard` checks against this table."""


def age(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


@functools.lru_cache(maxsize=512)
def badge(state: str | None, extra: str = "") -> Markup:
    """A state as icon, word and colour class (cached: a page of 1,000 rows has 3,000)."""
    key = state or "unknown"
    icon, word = STATES.get(key, ("•", key))
    css = key.replace(" ", "-") if key in STATES else "other"
    text = f"{word} {extra}".strip()
    del icon  # drawn by the stylesheet (`.st-…::before`), hidden from screen readers
    return Markup('<span class="badge st-{}">{}</span>').format(css, text)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        age=age,
        short=short,
        duration=duration,
        summary=summary,
        badge=badge,
        iso=lambda d: d.isoformat() if d else "",
        clock=lambda d: d.astimezone(UTC).strftime("%H:%M:%S"),
    )
    env.globals.update(commit_url=commit_url)
    return env


class Pages:
    """The templates, rendered with what each page needs.

    Rows are rendered once per change and reused: an app row until the app's next event,
    an event row for as long as the record is kept (records never change). A page of
    1,000 apps is then mostly a join of strings (docs/performance.md, dashboard).
    """

    def __init__(self, *, keep_events: int) -> None:
        self._env = environment()
        self._row = self._env.get_template("_rows.html").module
        self._app_rows: dict[str, tuple[int, Markup]] = {}
        self._event_rows: dict[int, Markup] = {}
        self._keep_events = keep_events

    def page(self, template: str, **context: Any) -> str:
        return self._env.get_template(template).render(**context)

    def app_row(self, row: AppRow) -> Markup:
        cached = self._app_rows.get(row.name)
        if cached is not None and cached[0] == row.version:
            return cached[1]
        html: Markup = self._row.app_row(row)  # type: ignore[attr-defined]
        self._app_rows[row.name] = (row.version, html)
        return html

    def app_rows(self, rows: list[AppRow]) -> Markup:
        return Markup("").join([self.app_row(row) for row in rows])

    def event_row(self, record: Record, repo_urls: dict[str, str]) -> Markup:
        html = self._event_rows.get(record.seq)
        if html is None:
            html = self._row.event_row(record, repo_urls)  # type: ignore[attr-defined]
            self._event_rows[record.seq] = html
            if len(self._event_rows) > 2 * self._keep_events:
                oldest = sorted(self._event_rows)[: self._keep_events]
                for seq in oldest:
                    del self._event_rows[seq]
        return html

    def event_rows(self, records: list[Record], repo_urls: dict[str, str]) -> Markup:
        return Markup("").join([self.event_row(r, repo_urls) for r in records])
