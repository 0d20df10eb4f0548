"""JSON for the receiver's request and answer bodies, with orjson.

Every webhook body is parsed on the request path before anything else can be decided: a
9 KB GitHub payload takes 45 µs with `json` and 18 µs with orjson. The events the
receiver publishes are not written here: they are the `schemas.events` models'
`to_bytes`, so their bytes are the contract's by construction (docs/performance.md,
"Event encoding decision", measured what writing them by hand would save).
"""

from __future__ import annotations

import json
from datetime import datetime

import orjson

_DUMP_OPTIONS = orjson.OPT_UTC_Z
"""`...Z` for UTC times, as pydantic writes them."""


def loads(text: str) -> object:
    """Parse JSON text as `json.loads` does, fast for the documents Git hosts send.

    orjson is stricter (no NaN or Infinity, no lone surrogates) and words its errors
    differently, so when it refuses a document the standard parser decides: the
    documents accepted and the error messages (`json.JSONDecodeError`, `RecursionError`)
    stay those of `json`. One difference remains: orjson reads an integer beyond 64
    bits as a float. The only integer the receiver reads is GitLab's
    `total_commits_count`; one that large already marks the file list incomplete, and
    it is then published without a `commit_count` instead of with a 20-digit one.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps(value: object) -> bytes:
    """JSON bytes of plain values (dicts, lists, strings, numbers, UTC datetimes)."""
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits (a payload parsed by `json` may carry one).
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_utc_time)
        return text.encode()


def _utc_time(value: object) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
    return value.isoformat().replace("+00:00", "Z")
