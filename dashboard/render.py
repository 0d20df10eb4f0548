"""Server-side HTML: one Jinja2 environment, its filters, and the fragments the live pages
swap in (an app row, an event row), rendered by the same macros as the full pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from dashboard.board import AppRow
from dashboard.describe import duration, short, summary
from dashboard.links import commit_url
from dashboard.records import Record

STATES = {
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
}
"""Every state is told by an icon AND a word, never by colour alone."""


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


def badge(state: str | None, extra: str = "") -> Markup:
    key = state or "unknown"
    icon, word = STATES.get(key, ("•", key))
    css = key.replace(" ", "-") if key in STATES else "other"
    text = f"{word} {extra}".strip()
    return Markup('<span class="badge st-{}"><span aria-hidden="true">{}</span> {}</span>').format(
        css, icon, text
    )


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
    """The templates, rendered with what each page needs."""

    def __init__(self) -> None:
        self._env = environment()
        self._row = self._env.get_template("_rows.html").module

    def page(self, template: str, **context: Any) -> str:
        return self._env.get_template(template).render(**context)

    def app_row(self, row: AppRow) -> str:
        return str(self._row.app_row(row))  # type: ignore[attr-defined]

    def event_row(self, record: Record, repo_urls: dict[str, str]) -> str:
        return str(self._row.event_row(record, repo_urls))  # type: ignore[attr-defined]
