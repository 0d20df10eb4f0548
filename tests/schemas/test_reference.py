"""The configuration reference users read is generated from the models and kept current."""

from __future__ import annotations

from schemas.reference import TARGET, render_reference


def test_configuration_reference_is_current() -> None:
    """Fails when a config field changed without `python -m schemas.reference`."""
    assert TARGET.read_text(encoding="utf-8") == render_reference(), (
        "docs/configuration.md is stale: run `python -m schemas.reference`"
    )


def test_every_config_field_is_documented() -> None:
    text = render_reference()
    undocumented = [
        line for line in text.splitlines() if line.startswith("| `") and line.endswith("|  |")
    ]
    assert not undocumented, undocumented
