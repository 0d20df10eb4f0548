"""Prometheus metrics of one notifier, in a registry of its own (as the syncer's are)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class NotifierMetrics:
    """Deliveries and give-ups, request and end-to-end latency, each per provider."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "gitops_notifier_deliveries",
            "Notifications by provider and result (delivered, failed, superseded, no_commit).",
            ["provider", "result"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "gitops_notifier_attempts",
            "HTTP requests sent, by provider and answer class (2xx, 4xx, 429, 5xx, network).",
            ["provider", "answer"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "gitops_notifier_request_seconds",
            "Time of one HTTP request to the provider, by provider.",
            ["provider"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "gitops_notifier_delivery_seconds",
            "From the event's time to its notification being accepted, by provider.",
            ["provider"],
            buckets=_SECONDS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        body: bytes = generate_latest(self.registry)
        return body
