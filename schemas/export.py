"""Generate the JSON Schema files that describe the configuration and every event type."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.config import GitopsConfig
from schemas.events import EVENT_MODELS, DeadLetter

CHECKED_IN = Path(__file__).parent / "json"


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, one per event type, the DLQ record and the config file."""
    documents = {
        f"{name}.schema.json": model.model_json_schema() for name, model in EVENT_MODELS.items()
    }
    documents["gitops.sync-requests.dlq.schema.json"] = DeadLetter.model_json_schema()
    documents["config.schema.json"] = GitopsConfig.model_json_schema()
    return {
        name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in documents.items()
    }


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        target = directory / name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
