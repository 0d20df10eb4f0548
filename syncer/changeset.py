"""Change sets: what one operation of the apply engine did, object by object.

Every engine operation (apply a stage, prune, run a hook) returns one, as Flux's `ssa`
manager does, and the reconcile only adds them up; the sum becomes the outcome event's
object results. Each result says when in the sync it happened (`phase`, `wave`), so the
order of a staged sync can be read back from the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import ObjectAction, ObjectResult, SyncPhase
from syncer.inventory import Entry
from syncer.planning import Planned

_PHASE_ORDER: dict[str | None, int] = {"pre-sync": 0, "sync": 1, "post-sync": 2, "sync-failed": 3}


def result_of(
    item: Planned | Entry,
    action: ObjectAction,
    error: str | None = None,
    *,
    wave: int | None = None,
) -> ObjectResult:
    """One object's result; a planned object's phase is its hook's, else `sync`."""
    if isinstance(item, Planned):
        api_version, kind, namespace, name = (
            item.info.api_version,
            item.kind,
            item.namespace,
            item.name,
        )
        phase: SyncPhase = item.hook.phase if item.hook is not None else "sync"
    else:
        api_version, kind, namespace, name = (
            item.api_version,
            item.kind,
            item.namespace or None,
            item.name,
        )
        phase = "sync"
    return ObjectResult(
        api_version=api_version,
        kind=kind,
        namespace=namespace,
        name=name,
        action=action,
        error=error,
        phase=phase,
        wave=wave,
    )


@dataclass
class ChangeSet:
    """Per-object results of one or more engine operations."""

    entries: list[ObjectResult] = field(default_factory=list)

    def add(
        self,
        item: Planned | Entry,
        action: ObjectAction,
        error: str | None = None,
        *,
        wave: int | None = None,
    ) -> None:
        self.entries.append(result_of(item, action, error, wave=wave))

    def extend(self, other: ChangeSet) -> ChangeSet:
        self.entries.extend(other.entries)
        return self

    def in_order(self) -> list[ObjectResult]:
        """The results in the order the sync ran: phase, wave, then namespace, kind, name.

        Pruned objects come after every wave of the sync phase (they have no wave)."""
        return sorted(
            self.entries,
            key=lambda o: (
                _PHASE_ORDER.get(o.phase, 1),
                o.wave is None,
                o.wave or 0,
                o.namespace or "",
                o.kind,
                o.name,
            ),
        )
