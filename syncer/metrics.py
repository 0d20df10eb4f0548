"""Prometheus metrics of one syncer, in a registry of its own.

A registry per syncer (not prometheus-client's global one) lets tests and embedders run
several syncers in one process without colliding metric names.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from schemas.events import ObjectResult

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class SyncerMetrics:
    """Syncs by outcome, sync and fetch durations, objects applied, drift found, consumer lag,
    and API requests (what a sync costs the API server, and whether more syncers add to it)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.syncs = Counter(
            "gitops_syncer_syncs",
            "Sync requests answered, by app and outcome (succeeded, failed, skipped).",
            ["app", "outcome"],
            registry=self.registry,
        )
        self.sync_seconds = Histogram(
            "gitops_syncer_sync_seconds",
            "Time from taking a request to its outcome, by app.",
            ["app"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.objects = Counter(
            "gitops_syncer_objects",
            "Objects handled by syncs, by action (created, configured, unchanged, pruned, failed).",
            ["action"],
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            "gitops_syncer_fetch_seconds",
            "Time to make a commit available in the git cache (fetching when needed).",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.drift = Counter(
            "gitops_syncer_drift_detected",
            "Drift reports published, by app.",
            ["app"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "gitops_syncer_consumer_lag",
            "Sync requests not yet consumed, by assigned partition of the requests topic.",
            ["partition"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "gitops_syncer_dead_letters",
            "Requests sent to the dead-letter topic after their last attempt, by app.",
            ["app"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "gitops_syncer_api_requests",
            "Requests sent to API servers, by cluster, method and answer (HTTP status class"
            " such as 2xx or 4xx, 429 apart; 'error' when no answer came). Retries count.",
            ["cluster", "method", "code"],
            registry=self.registry,
        )

    def api_request(self, cluster: str, method: str, status: int | None) -> None:
        code = "error" if status is None else "429" if status == 429 else f"{status // 100}xx"
        self.api_requests.labels(cluster=cluster, method=method, code=code).inc()

    def outcome(
        self, app: str, kind: str, seconds: float, objects: Iterable[ObjectResult], dlq: bool
    ) -> None:
        self.syncs.labels(app=app, outcome=kind).inc()
        self.sync_seconds.labels(app=app).observe(seconds)
        for result in objects:
            self.objects.labels(action=result.action).inc()
        if dlq:
            self.dead_letters.labels(app=app).inc()

    def set_lag(self, lag: dict[int, int]) -> None:
        self.lag.clear()
        for partition, value in lag.items():
            self.lag.labels(partition=str(partition)).set(value)

    def render(self) -> bytes:
        body: bytes = generate_latest(self.registry)
        return body
