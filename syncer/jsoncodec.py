"""JSON encoding on the hot path of a sync, with orjson.

A 1,000-object sync encodes and decodes a few thousand documents; the standard library
takes several times orjson's CPU for each. orjson refuses what the standard library
accepts in a few corners (integers beyond 64 bits, non-string keys unless asked), so
those fall back to `json` and give the same result.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def compact_json(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON, as `json.dumps(separators=(",", ":"))` would."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def plain_json(value: Any) -> Any:
    """A copy of a parsed YAML document made only of JSON values: shared (aliased)
    nodes become independent copies, non-string keys become strings."""
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:
        return json.loads(json.dumps(value))


def canonical_json(value: Any) -> bytes:
    """`value` with sorted keys, compact: the same bytes for the same value, for digests."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
