"""A small inline SVG of an app's sync durations over time: no script, no library.

The points are the app's recent outcomes, oldest left; each is a circle coloured and
shaped by outcome (a failed sync is a square, so the chart does not rely on colour),
with a `<title>` a screen reader or a hover shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from dashboard.records import Record

WIDTH, HEIGHT, PAD, LEFT = 480, 120, 16, 64


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    outcome: str
    label: str


def points(outcomes: Sequence[Record]) -> tuple[list[Point], int]:
    """Chart coordinates of each outcome with a duration, and the largest duration (ms)."""
    timed = [(r, ms) for r in outcomes if isinstance(ms := r.data.get("duration_ms"), int)]
    if not timed:
        return [], 0
    top = max(max(ms for _, ms in timed), 1)
    step = (WIDTH - LEFT - PAD) / max(len(timed) - 1, 1)
    found = []
    for i, (record, ms) in enumerate(timed):
        x = LEFT + i * step if len(timed) > 1 else (LEFT + WIDTH - PAD) / 2
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * ms / top
        stamp = record.time.strftime("%Y-%m-%d %H:%M:%S")
        found.append(Point(x, y, record.kind, f"{stamp} {record.kind} {ms} ms"))
    return found, top


def duration_chart(outcomes: Sequence[Record]) -> str:
    """The SVG markup for the App page; every text in it is escaped here."""
    found, top = points(outcomes)
    if not found:
        return '<p class="muted">No sync with a duration yet.</p>'
    line = " ".join(f"{p.x:.1f},{p.y:.1f}" for p in found)
    marks = []
    for p in found:
        title = f"<title>{escape(p.label)}</title>"
        if p.outcome == "failed":
            marks.append(
                f'<rect class="pt pt-failed" x="{p.x - 4:.1f}" y="{p.y - 4:.1f}" '
                f'width="8" height="8">{title}</rect>'
            )
        else:
            marks.append(
                f'<circle class="pt pt-{escape(p.outcome)}" cx="{p.x:.1f}" cy="{p.y:.1f}" r="4">'
                f"{title}</circle>"
            )
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" aria-labelledby="chart-title">'
        f'<title id="chart-title">Sync durations of the last {len(found)} syncs, '
        f"longest {top} ms</title>"
        f'<line class="axis" x1="{LEFT - 4}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>'
        f'<text class="tick" x="{LEFT - 8}" y="{PAD + 4}" text-anchor="end">{top} ms</text>'
        f'<text class="tick" x="{LEFT - 8}" y="{HEIGHT - PAD + 4}" text-anchor="end">0</text>'
        f'<polyline class="series" points="{line}"/>' + "".join(marks) + "</svg>"
    )
