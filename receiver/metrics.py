"""Prometheus metrics of one receiver, in a registry of its own.

A registry per application (not prometheus-client's global one) lets tests and
`gitops up` run several receivers in one process without colliding metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ReceiverMetrics:
    """Requests by provider and outcome, publish latency, signature failures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gitops_receiver_requests",
            "Webhook requests answered, by provider and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "gitops_receiver_publish_seconds",
            "Time from sending a delivery's messages until the broker acknowledged all of them.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "gitops_receiver_signature_failures",
            "Requests refused because no registered secret signed them.",
            ["provider"],
            registry=self.registry,
        )
        self.published = Counter(
            "gitops_receiver_messages_published",
            "Messages acknowledged by the broker, by topic.",
            ["topic"],
            registry=self.registry,
        )
        # Bounded: providers x outcomes, and our four topics.
        self._requests: dict[tuple[str, str], Counter] = {}
        self._published: dict[str, Counter] = {}

    def count_request(self, provider: str, outcome: str) -> None:
        """One answered webhook; the labelled child is looked up once per label pair."""
        child = self._requests.get((provider, outcome))
        if child is None:
            child = self._requests[(provider, outcome)] = self.requests.labels(provider, outcome)
        child.inc()

    def count_published(self, topic: str) -> None:
        """One message acknowledged by the broker."""
        child = self._published.get(topic)
        if child is None:
            child = self._published[topic] = self.published.labels(topic)
        child.inc()

    def render(self) -> bytes:
        body: bytes = generate_latest(self.registry)
        return body
