"""Label and field selectors, parsed once per request and matched per object.

Grammar from the Kubernetes labels package (``k8s.io/apimachinery/pkg/labels``):
``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a`` (exists) and ``!a``
(does not exist), comma-separated and ANDed. Field selectors support what every
resource supports: ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==``, ``!=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from devcluster.status import ApiError, bad_request

Requirement = Callable[[Mapping[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside ``( )`` value sets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def _requirement(term: str) -> Requirement:
    eq = _EQ_RE.match(term)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    match = _SET_RE.match(term)
    if not match:
        raise bad_request(f"unable to parse requirement: {term!r}")
    negated, key, op, values_text = match.groups()
    if op is None:
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    if negated:
        raise bad_request(f"unable to parse requirement: {term!r}")
    values = frozenset(v.strip() for v in values_text.split(",") if v.strip())
    if op == "in":
        return lambda labels: labels.get(key) in values
    return lambda labels: labels.get(key) not in values


class LabelSelector:
    """A parsed ``labelSelector`` query parameter; empty matches everything."""

    def __init__(self, text: str | None) -> None:
        self._requirements = [_requirement(t) for t in _split_top(text or "")]

    @property
    def empty(self) -> bool:
        return not self._requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        found: Mapping[str, str] = labels or {}
        return all(req(found) for req in self._requirements)


_FIELDS = {"metadata.name": "name", "metadata.namespace": "namespace"}


class FieldSelector:
    """A parsed ``fieldSelector``; only the fields every resource supports are accepted."""

    def __init__(self, text: str | None) -> None:
        self._terms: list[tuple[str, bool, str]] = []
        for term in _split_top(text or ""):
            match = _EQ_RE.match(term)
            if not match:
                raise bad_request(f"invalid selector: {term!r}")
            path, op, value = match.groups()
            if path not in _FIELDS:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"field label not supported: {path}",
                )
            self._terms.append((_FIELDS[path], op == "!=", value))

    @property
    def empty(self) -> bool:
        return not self._terms

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        for attr, negate, value in self._terms:
            equal = (metadata.get(attr) or "") == value
            if equal == negate:
                return False
        return True
