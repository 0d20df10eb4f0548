"""Ordering annotations on objects in Git: sync waves and hooks.

`gitops.dev/sync-wave: "<int>"` (default 0, negative allowed) puts an object in a wave;
waves are applied in ascending order, each healthy before the next starts.
`gitops.dev/hook: pre-sync | post-sync | sync-failed` makes an object a hook: it is not
applied with the app but run around the sync (pre-sync before the first write, post-sync
once the app is healthy, sync-failed when a sync fails), and never pruned as an app
object. `gitops.dev/hook-delete-policy` (comma-separated) says when a hook's object is
deleted: `before-hook-creation` (default), `hook-succeeded`, `hook-failed`.
docs/ordering.md has the whole picture with examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

SYNC_WAVE = "gitops.dev/sync-wave"
HOOK = "gitops.dev/hook"
HOOK_DELETE_POLICY = "gitops.dev/hook-delete-policy"

HookPhase = Literal["pre-sync", "post-sync", "sync-failed"]
DeletePolicy = Literal["before-hook-creation", "hook-succeeded", "hook-failed"]
_PHASES: tuple[str, ...] = get_args(HookPhase)
_POLICIES: tuple[str, ...] = get_args(DeletePolicy)


class OrderingError(ValueError):
    """An ordering annotation whose value we cannot use; the text names it and the choices."""


@dataclass(frozen=True, slots=True)
class Hook:
    """When a hook runs and when its object is deleted."""

    phase: HookPhase
    delete_policies: frozenset[DeletePolicy] = frozenset({"before-hook-creation"})


def _annotations(body: dict[str, Any]) -> dict[str, Any]:
    found = (body.get("metadata") or {}).get("annotations") or {}
    return found if isinstance(found, dict) else {}


def wave_of(body: dict[str, Any]) -> int:
    """The object's sync wave (0 without the annotation)."""
    raw = _annotations(body).get(SYNC_WAVE)
    if raw is None:
        return 0
    try:
        return int(str(raw).strip())
    except ValueError:
        raise OrderingError(
            f'annotation {SYNC_WAVE} must be an integer such as "-1" or "2", got {raw!r}'
        ) from None


def hook_of(body: dict[str, Any]) -> Hook | None:
    """The object's hook settings; None for an ordinary app object."""
    annotations = _annotations(body)
    raw = annotations.get(HOOK)
    if raw is None:
        policy = annotations.get(HOOK_DELETE_POLICY)
        if policy is not None:
            raise OrderingError(f"annotation {HOOK_DELETE_POLICY} is only allowed with {HOOK}")
        return None
    phase = str(raw).strip()
    if phase not in _PHASES:
        raise OrderingError(f"annotation {HOOK} must be one of {', '.join(_PHASES)}, got {raw!r}")
    listed = str(annotations.get(HOOK_DELETE_POLICY) or "before-hook-creation")
    policies = {p.strip() for p in listed.split(",") if p.strip()}
    unknown = sorted(policies - set(_POLICIES))
    if unknown or not policies:
        raise OrderingError(
            f"annotation {HOOK_DELETE_POLICY} must list {', '.join(_POLICIES)}, got {listed!r}"
        )
    return Hook(cast(HookPhase, phase), cast(frozenset[DeletePolicy], frozenset(policies)))
