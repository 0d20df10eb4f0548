"""Message text: one short Jinja2 template per rule, rendered in a sandbox.

Templates come from the configuration, which a platform team writes but many people may
edit; the sandbox keeps a template from reaching Python internals (`{{ x.__class__ }}`
raises), and the context holds only the event's own fields. The default says what
happened in one line, which is what a chat or a status description has room for.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from notifier.errors import PermanentDeliveryError
from notifier.moments import Moment
from schemas.config import NotificationRule
from schemas.events import DriftDetected

DEFAULT_TEMPLATE = (
    "{% if outcome == 'requested' %}gitops: syncing {{ app }} to {{ short_commit }}"
    "{% elif outcome == 'succeeded' %}gitops: {{ app }} synced {{ short_commit }}"
    "{% if cluster %} to {{ cluster }}{% endif %}"
    "{% elif outcome == 'failed' %}gitops: {{ app }} failed to sync {{ short_commit }}"
    "{% if error %}: {{ error }}{% endif %}"
    "{% elif outcome == 'skipped' %}gitops: {{ app }} skipped {{ short_commit }}"
    "{% if error %}: {{ error }}{% endif %}"
    "{% else %}gitops: {{ app }} drifted from {{ short_commit }}"
    " ({{ drifted }} object{{ '' if drifted == 1 else 's' }}){% endif %}"
)
MAX_TEXT = 3000
"""Longest text sent (Slack cuts a message's text at 40,000 characters, a status far sooner)."""


def context_of(rule: NotificationRule, moment: Moment) -> dict[str, Any]:
    event = moment.event
    data = event.data
    commit = moment.commit or ""
    return {
        "rule": rule.name,
        "app": moment.app,
        "outcome": moment.kind,
        "commit": commit,
        "short_commit": commit[:7] if commit else "branch head",
        "error": getattr(data, "error", None) or "",
        "cluster": getattr(data, "cluster", "") or "",
        "reason": getattr(data, "reason", None) or "",
        "duration_ms": getattr(data, "duration_ms", 0),
        "drifted": len(event.data.objects) if isinstance(event, DriftDetected) else 0,
        "event": event.model_dump(mode="json", exclude_none=True),
    }


class Templates:
    """Compiles each rule's template once; rendering errors give the notification up."""

    def __init__(self) -> None:
        self._env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)
        self._compiled: dict[str, Template] = {}

    def _template(self, rule: NotificationRule) -> Template:
        source = rule.template or DEFAULT_TEMPLATE
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compiled[source] = self._env.from_string(source)
        return compiled

    def render(self, rule: NotificationRule, moment: Moment) -> str:
        try:
            text = self._template(rule).render(context_of(rule, moment))
        except TemplateError as exc:
            raise PermanentDeliveryError(f"template of rule {rule.name}: {exc}") from None
        text = text.strip()
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
