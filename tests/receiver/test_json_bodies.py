"""Webhook bodies parse as the standard `json` module parses them, errors included."""

from __future__ import annotations

import json
import math

import pytest

from receiver import encoding


@pytest.mark.parametrize(
    "text",
    [
        '{"ref": "refs/heads/main", "size": 12345678901234567890}',
        '{"ratio": NaN}',
        '{"name": "\\ud800"}',
        '{"ref": "refs/heads/main", "commits": [{"id": "a"}]}',
    ],
)
def test_bodies_parse_as_the_standard_json_module_parses_them(text: str) -> None:
    ours, standard = encoding.loads(text), json.loads(text)
    if "NaN" in text:  # NaN != NaN
        assert isinstance(ours, dict) and math.isnan(ours["ratio"])
    else:
        assert ours == standard


@pytest.mark.parametrize("text", ['{"ref": ', "[1, 2", '{"a": 1} x', "\ufeff{}"])
def test_refused_bodies_fail_with_the_standard_json_module_s_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        encoding.loads(text)
    with pytest.raises(json.JSONDecodeError) as standard:
        json.loads(text)
    assert str(ours.value) == str(standard.value)
