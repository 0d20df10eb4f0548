"""Structured JSON logs for the long-running processes, with secrets scrubbed.

Every record becomes one JSON object; fields passed with `extra=` (app, commit,
delivery_id, ...) are kept as keys, so log pipelines can filter on them. As a last line
of defence, every secret value from the configuration is replaced by `***` before the
line is written.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from schemas import GitopsConfig, SecretRef

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, *, component: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.component = component
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str)
        for secret in self.secrets:
            line = line.replace(secret, "***")
        return line


def config_secrets(config: GitopsConfig) -> list[str]:
    values: list[str] = []
    for repo in config.repositories.values():
        values.extend(ref.resolve().get_secret_value() for ref in repo.webhook_secrets())
        if repo.auth is not None:
            for ref in repo.auth.secret_refs():
                secret = ref.resolve().get_secret_value()
                values.append(secret)
                # A key file's body lines, should a library ever quote one.
                values.extend(line for line in secret.splitlines()[1:-1] if len(line) >= 16)
    for rule in config.notifications:
        for held in (rule.url, rule.token, rule.secret):
            if isinstance(held, SecretRef):
                values.append(held.resolve().get_secret_value())
    if config.ui.token is not None:
        values.append(config.ui.token.resolve().get_secret_value())
    return values


def configure_logging(component: str, config: GitopsConfig | None, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    secrets = config_secrets(config) if config is not None else []
    handler.setFormatter(JsonFormatter(component=component, secrets=secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel("WARNING")
    logging.getLogger("kubernetes_asyncio").setLevel("WARNING")
    logging.getLogger("aiohttp.access").setLevel("WARNING")
