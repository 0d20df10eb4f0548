"""Render the configuration reference (docs/configuration.md) from the models' docstrings.

The reference is generated so it cannot drift from what the loader accepts; a test
fails when the checked-in copy is stale. Regenerate with `python -m schemas.reference`.
"""

from __future__ import annotations

import sys
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from schemas.config import GitopsConfig

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return f"map of name to {_type_name(get_args(annotation)[1])}"
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in get_args(annotation))
    if annotation is type(None):
        return "null"
    if annotation is timedelta:
        return "duration"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "" if value in ({}, []) else f"`{value}`"
    if info.default is PydanticUndefined:
        return "required"
    value = info.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, timedelta):
        return f"`{int(value.total_seconds())}s`"
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(m for m in _models(arg) if m not in found)
    return found


def render_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `schemas/config.py` by `python -m schemas.reference`; do not edit.",
        "Unknown keys are errors. Durations are written `30s`, `5m`, `1h30m`; sizes `5MiB`.",
        "A secret is `{env: NAME}`, `{file: PATH}` or, for local use, `{value: ...}`.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", GitopsConfig)]
    while queue:
        title, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [f"## {title}", "", (model.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, info in model.model_fields.items():
            description = (info.description or "").replace("\n", " ").replace("|", "\\|")
            lines.append(
                f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {description} |"
            )
            for sub in _models(info.annotation):
                path = name if title == "(top level)" else f"{title}.{name}"
                if get_origin(info.annotation) is dict:
                    path += ".<name>"
                queue.append((path, sub))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render_reference(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
