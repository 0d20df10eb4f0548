"""Secret values never leave a diff: each value of a Secret's `data`/`stringData` is hidden.

A diff of a Secret still has to say *that* a value changed, or drift in a password would
be invisible. So a value equal on both sides becomes `(hidden)` on both, and a value that
differs becomes `(hidden, live value)` against `(hidden, value in Git)`: the line shows
up in the diff without a single byte of either value.
"""

from __future__ import annotations

import copy
from typing import Any

JsonObj = dict[str, Any]
SAME = "(hidden)"
LIVE = "(hidden, live value)"
GIT = "(hidden, value in Git)"
_VALUE_FIELDS = ("data", "stringData")


def is_secret(obj: JsonObj | None) -> bool:
    return obj is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def hide_values(live: JsonObj | None, expected: JsonObj) -> tuple[JsonObj | None, JsonObj]:
    """Copies of both sides with every Secret value replaced by a marker (others unchanged)."""
    if not (is_secret(expected) or is_secret(live)):
        return live, expected
    live_copy = copy.deepcopy(live) if live is not None else None
    expected_copy = copy.deepcopy(expected)
    for field in _VALUE_FIELDS:
        live_values = _values(live_copy, field)
        git_values = _values(expected_copy, field)
        for key in set(live_values) | set(git_values):
            same = key in live_values and key in git_values and live_values[key] == git_values[key]
            if key in live_values:
                live_values[key] = SAME if same else LIVE
            if key in git_values:
                git_values[key] = SAME if same else GIT
    return live_copy, expected_copy


def _values(obj: JsonObj | None, field: str) -> dict[str, Any]:
    if obj is None or not isinstance(obj.get(field), dict):
        return {}
    found: dict[str, Any] = obj[field]
    return found
