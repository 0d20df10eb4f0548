"""One readable line per event, for `gitops events tail` and the `gitops up` live stream."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from schemas.events import (
    AnyEvent,
    AppGenerated,
    AppRemoved,
    AppSetFailed,
    AppStatus,
    DriftDetected,
    NotificationFailed,
    ObjectAction,
    ObjectResult,
    PushReceived,
    SyncFailed,
    SyncRequested,
    SyncSkipped,
    SyncSucceeded,
)


def short(sha: str | None) -> str:
    return sha[:7] if sha else "-"


def _step(result: ObjectResult) -> str:
    if result.phase not in (None, "sync"):
        return str(result.phase)
    return f"wave {result.wave}" if result.wave is not None else "prune"


_PHASES = {"pre-sync": 0, "sync": 1, "post-sync": 2, "sync-failed": 3}


def _step_order(result: ObjectResult) -> tuple[int, bool, int]:
    return (_PHASES.get(result.phase or "sync", 1), result.wave is None, result.wave or 0)


def steps(objects: Sequence[ObjectResult]) -> list[str]:
    """The steps a sync went through (`pre-sync`, `wave -1`, `wave 0`, `prune`,
    `post-sync`, `sync-failed`); empty for a sync without hooks or waves, whose one wave
    is all there is to say."""
    staged_objects = sorted((o for o in objects if o.phase is not None), key=_step_order)
    names = list(dict.fromkeys(_step(o) for o in staged_objects))
    staged = [n for n in names if n != "prune"]
    if len(staged) <= 1 and all(n.startswith("wave") for n in staged):
        return []
    return names


def describe_steps(objects: Sequence[ObjectResult]) -> str:
    """`pre-sync Job/migrate created; wave -1 created 2; wave 0 created 2`."""
    parts = []
    for name in steps(objects):
        members = [o for o in objects if o.phase is not None and _step(o) == name]
        if name.startswith("wave") or name == "prune":
            counts = Counter(o.action for o in members)
            parts.append(f"{name} " + ", ".join(f"{a} {n}" for a, n in counts.items()))
        else:
            parts.append(f"{name} " + ", ".join(f"{o.kind}/{o.name} {o.action}" for o in members))
    return "; ".join(parts)


def format_event(event: AnyEvent) -> str:
    """`13:02:11 guestbook  a1b2c3d  succeeded  created 3, configured 1, pruned 0  240ms`."""
    stamp = event.time.strftime("%H:%M:%S")
    if isinstance(event, SyncSucceeded | SyncFailed | SyncSkipped):
        data = event.data
        outcome = event.type.rsplit(".", 1)[-1]
        counts = Counter(o.action for o in data.objects)
        actions: tuple[ObjectAction, ...] = ("created", "configured", "pruned", "orphaned")
        parts = [f"{a} {counts[a]}" for a in actions if counts[a]]
        if counts["failed"]:
            parts.append(f"failed {counts['failed']}")
        summary = ", ".join(parts) if parts else f"{len(data.objects)} objects"
        line = (
            f"{stamp} {data.app:<16} {short(data.commit)}  {outcome:<9} {summary}"
            f"  {data.duration_ms}ms"
        )
        if data.health and isinstance(event, SyncSucceeded):
            line += f"  {data.health}"
        if steps(data.objects):
            line += f"  [{describe_steps(data.objects)}]"
        if data.error:
            line += f"  — {data.error}"
        return line
    if isinstance(event, DriftDetected):
        data_d = event.data
        names = ", ".join(
            f"{o.kind}/{o.name}" + (f" ({', '.join(o.fields)})" if o.fields else f" {o.state}")
            for o in data_d.objects
        )
        mode = "self-heal" if data_d.self_heal else "detect-only"
        return f"{stamp} {data_d.app:<16} {short(data_d.commit)}  drift     {names}  [{mode}]"
    if isinstance(event, SyncRequested):
        data_r = event.data
        return f"{stamp} {data_r.app:<16} {short(data_r.commit)}  requested ({data_r.reason})"
    if isinstance(event, AppStatus):
        status = event.data
        state = "ready" if status.ready else "not ready"
        if status.hold is not None:
            state += f", suspended: {status.hold.reason}"
        if status.waiting_for:
            state += f", waiting for {', '.join(status.waiting_for)}"
        return f"{stamp} {status.app:<16} {short(status.commit)}  status    {state}"
    if isinstance(event, AppGenerated | AppRemoved):
        data_g = event.data
        what = "generated" if isinstance(event, AppGenerated) else "removed"
        return (
            f"{stamp} {data_g.app:<16} {short(data_g.commit)}  {what:<9} by app set"
            f" {data_g.app_set} from {data_g.source}"
        )
    if isinstance(event, AppSetFailed):
        data_s = event.data
        return (
            f"{stamp} app set {data_s.app_set:<8} {short(data_s.commit)}  failed    "
            + data_s.error.replace("\n", "; ")
        )
    if isinstance(event, NotificationFailed):
        data_n = event.data
        return (
            f"{stamp} {data_n.app:<16} {short(data_n.commit)}  notify!   {data_n.rule}"
            f" ({data_n.provider}) gave up on {data_n.outcome}: {data_n.error}"
        )
    assert isinstance(event, PushReceived)  # noqa: S101 - the union is exhaustive
    data_p = event.data
    apps = ", ".join(data_p.apps) if data_p.apps else "no app"
    return (
        f"{stamp} push {data_p.provider} {data_p.ref} {short(data_p.before)}..{short(data_p.after)}"
        f" -> {apps}"
    )
