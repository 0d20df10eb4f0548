"""Which rules a moment triggers: its kind is in the rule's `on`, its app matches `apps`."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from notifier.moments import Moment
from schemas.config import NotificationRule


def matches(rule: NotificationRule, moment: Moment) -> bool:
    if moment.kind not in rule.on:
        return False
    return not rule.apps or any(fnmatchcase(moment.app, pattern) for pattern in rule.apps)


def rules_for(rules: Sequence[NotificationRule], moment: Moment) -> list[NotificationRule]:
    return [rule for rule in rules if matches(rule, moment)]
