"""Change sets: what one operation of the apply engine did, object by object.

Every engine operation (apply a stage, prune, run a hook) returns one, as Flux's `ssa`
manager does, and the reconcile only adds them up; the sum becomes the outcome event's
object results, in the order the operations ran. Each result also says when in the
sync it happened (`phase`, `wave`), so a staged sync can be read back from the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import ObjectAction, ObjectResult, Refusal, SyncPhase
from syncer.inventory import Entry
from syncer.planning import Planned


def result_of(
    item: Planned | Entry,
    action: ObjectAction,
    error: str | None = None,
    *,
    wave: int | None = None,
    refused: Refusal | None = None,
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
        refused=refused,
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
        refused: Refusal | None = None,
    ) -> None:
        self.entries.append(result_of(item, action, error, wave=wave, refused=refused))

    def extend(self, other: ChangeSet) -> ChangeSet:
        self.entries.extend(other.entries)
        return self

    def sorted(self) -> ChangeSet:
        """The same results by namespace, kind and name: one operation's objects are
        written concurrently, so the order they finished in means nothing."""
        self.entries.sort(key=lambda o: (o.namespace or "", o.kind, o.name))
        return self
