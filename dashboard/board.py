"""Where every app stands, folded from the event trail: the rows of the Apps page.

Each record moves the app it names forward: a request marks it pending, an outcome sets
its last outcome (and clears the drift it answers), a drift report marks it drifted. Apps
the configuration does not list (generated ones, another installation's) get a row from
what their events say, so nothing on the topics is invisible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from dashboard.records import DRIFT, OUTCOME_TYPES, REQUEST, Record
from schemas import GitopsConfig

HISTORY = 60
"""Outcomes kept per app for its duration chart and its recent events."""


@dataclass
class AppRow:
    """One app: what the configuration says and what its events said last."""

    name: str
    repo: str = ""
    repo_url: str = ""
    branch: str = ""
    path: str = ""
    cluster: str = ""
    namespace: str = ""
    configured: bool = True
    outcome: Record | None = None
    pending: Record | None = None
    """A request newer than the last outcome: a sync is on its way."""
    drift: Record | None = None
    """A drift report newer than the last success."""
    health: str | None = None
    """From the last outcome that assessed it: a failed sync changed nothing, so the
    workloads keep the health the last applied commit left them in."""
    outcomes: deque[Record] = field(default_factory=lambda: deque(maxlen=HISTORY))
    recent: deque[Record] = field(default_factory=lambda: deque(maxlen=HISTORY))
    """Requests, outcomes and drift reports of this app, oldest first."""
    version: int = 0
    """Bumped on every change, so a rendered row can be reused until the next one."""

    @property
    def state(self) -> str:
        """`succeeded`, `failed`, `skipped`, `never` or an outcome type we do not know yet."""
        return self.outcome.kind if self.outcome is not None else "never"

    @property
    def drift_state(self) -> str:
        if self.drift is not None:
            return "drifted"
        return "in sync" if self.state == "succeeded" else "unknown"

    @property
    def drifted_objects(self) -> int:
        objects = self.drift.data.get("objects") if self.drift is not None else None
        return len(objects) if isinstance(objects, list) else 0

    @property
    def last_time(self) -> datetime | None:
        return self.outcome.time if self.outcome is not None else None

    @property
    def duration_ms(self) -> int | None:
        value = self.outcome.data.get("duration_ms") if self.outcome is not None else None
        return value if isinstance(value, int) else None

    @property
    def commit(self) -> str | None:
        return self.outcome.commit if self.outcome is not None else None


class Board:
    """All app rows, in configuration order, then unknown apps in order of appearance."""

    def __init__(self, config: GitopsConfig) -> None:
        self._rows: dict[str, AppRow] = {}
        for name, spec in config.apps.items():
            repo = config.repositories.get(spec.repo)
            self._rows[name] = AppRow(
                name=name,
                repo=spec.repo,
                repo_url=repo.url if repo is not None else "",
                branch=spec.branch,
                path=spec.path,
                cluster=spec.cluster,
                namespace=spec.namespace,
            )

    def rows(self) -> list[AppRow]:
        return list(self._rows.values())

    def get(self, name: str) -> AppRow | None:
        return self._rows.get(name)

    def apply(self, record: Record) -> list[AppRow]:
        """Fold one record in; return the rows it changed."""
        if record.type not in OUTCOME_TYPES and record.type not in (REQUEST, DRIFT):
            return []
        name = record.app
        if name is None:
            return []
        row = self._rows.get(name)
        if row is None:
            row = self._rows[name] = AppRow(name=name, configured=False)
        _learn(row, record)
        row.version += 1
        row.recent.append(record)
        if record.type == REQUEST:
            row.pending = record
        elif record.type == DRIFT:
            row.drift = record
        else:
            row.outcome = record
            row.outcomes.append(record)
            health = record.data.get("health")
            if isinstance(health, str):
                row.health = health
            row.pending = None
            if record.type == "gitops.sync.succeeded":
                row.drift = None
        return [row]


def _learn(row: AppRow, record: Record) -> None:
    """Fill what an unconfigured app's row lacks from its events."""
    if row.configured:
        return
    data = record.data
    for attr, key in (("repo_url", "repo_url"), ("branch", "branch"), ("cluster", "cluster")):
        value = data.get(key)
        if isinstance(value, str) and value and not getattr(row, attr):
            setattr(row, attr, value)
