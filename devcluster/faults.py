"""Faults on demand: make the next N requests of a verb/resource fail or stall.

Tests of retry and timeout handling need a cluster that misbehaves exactly when asked.
A rule matches on verb (``get``, ``list``, ``watch``, ``create``, ``update``, ``patch``,
``delete``, ``deletecollection`` or ``*``) and resource plural (or ``*``), optionally a
namespace and name, and fires for its next ``count`` matching requests: it sleeps
``delay`` seconds, then answers ``code`` as a Status (``code=0`` means delay only). Rules
are managed from Python (``cluster.faults.add(...)``) or over HTTP under
``/_devcluster/faults``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from devcluster.status import ApiError

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(slots=True)
class Fault:
    """One rule; ``count`` is decremented each time it fires."""

    verb: str = "*"
    resource: str = "*"
    count: int = 1
    code: int = 500
    delay: float = 0.0
    message: str = "injected fault"
    namespace: str | None = None
    name: str | None = None

    def fire(self) -> None:
        """Raise this rule's error; a delay-only rule (``code`` 0) lets the request on."""
        if self.code:
            headers = {"Retry-After": "1"} if self.code in (429, 503) else {}
            raise ApiError(
                self.code, _REASONS.get(self.code, "InternalError"), self.message, headers=headers
            )

    def matches(self, verb: str, resource: str, namespace: str, name: str) -> bool:
        return (
            self.count > 0
            and self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and self.namespace in (None, namespace)
            and self.name in (None, name)
        )


class Faults:
    """The fault rules of one cluster, consulted before every API request."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []

    def add(
        self,
        verb: str = "*",
        resource: str = "*",
        *,
        count: int = 1,
        code: int = 500,
        delay: float = 0.0,
        message: str = "injected fault",
        namespace: str | None = None,
        name: str | None = None,
    ) -> Fault:
        """Fail (or delay) the next ``count`` matching requests."""
        fault = Fault(verb, resource, count, code, delay, message, namespace, name)
        self._rules.append(fault)
        return fault

    def add_json(self, body: dict[str, Any]) -> Fault:
        allowed = set(Fault.__dataclass_fields__)
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        fault = Fault(**body)
        self._rules.append(fault)
        return fault

    def clear(self) -> None:
        self._rules.clear()

    def pending(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self._rules if f.count > 0]

    def take(self, verb: str, resource: str, namespace: str, name: str) -> Fault | None:
        """The first rule this request matches, counted as fired; the caller waits its
        ``delay`` and then calls :meth:`Fault.fire`."""
        for fault in self._rules:
            if fault.matches(verb, resource, namespace, name):
                fault.count -= 1
                self._rules = [f for f in self._rules if f.count > 0]
                return fault
        return None
