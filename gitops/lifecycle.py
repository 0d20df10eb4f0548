"""`gitops suspend`, `gitops resume`, `gitops rollback`: hold an app, release it, pin it back.

Each is a request on `<prefix>.sync-requests` keyed by the app (reasons `suspend`,
`resume`, `rollback`), so the syncer that owns the app carries it out in order with the
app's other requests and records the hold beside the app's inventory in its cluster.
The command waits for that syncer's outcome unless `--no-wait`. What the commands and
`gitops apps` show about holds and dependencies comes from the owners' statuses on the
compacted `<prefix>.app-status` topic.
"""

from __future__ import annotations

import sys

from gitops.display import short
from gitops.generated import with_generated
from gitops.operate import (
    EXIT_USAGE,
    build_request,
    check_app,
    check_sha,
    send_request,
)
from gitops.reading import read_events
from schemas import GitopsConfig, Topics
from schemas.events import AppStatus, AppStatusData
from schemas.types import CommitSha

TIMEOUT = 120.0


async def app_statuses(config: GitopsConfig) -> dict[str, AppStatusData]:
    """The latest status of every app that has one."""
    topic = Topics(config.kafka.topic_prefix).app_status
    latest: dict[str, AppStatusData] = {}
    async for event in read_events(config.kafka.bootstrap, [topic]):
        if isinstance(event, AppStatus):
            latest[event.data.app] = event.data
    return latest


def state_text(status: AppStatusData | None) -> str:
    """`suspended: <why>`, `waiting for a, b`, `ready`, `not ready`, or '' when unknown."""
    if status is None:
        return ""
    if status.hold is not None:
        return f"suspended: {status.hold.reason}"
    if status.waiting_for:
        return f"waiting for {', '.join(status.waiting_for)}"
    return "ready" if status.ready else "not ready"


async def refusal(config: GitopsConfig, app: str) -> str | None:
    """Why `gitops sync APP` must not go ahead (the app is held), or None."""
    status = (await app_statuses(config)).get(app)
    if status is None or status.hold is None:
        return None
    since = status.hold.since.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"app '{app}' is suspended ({status.hold.reason}, since {since}): "
        f"`gitops resume {app}` returns it to its branch head, "
        f"`gitops sync {app} --force` applies once and keeps it suspended"
    )


def _refuse(problem: str) -> int:
    print(f"gitops: {problem}", file=sys.stderr)
    return EXIT_USAGE


async def suspend_app(config: GitopsConfig, *, app: str, reason: str | None, wait: bool) -> int:
    config, _ = await with_generated(config)
    if problem := check_app(config, app):
        return _refuse(problem)
    request = build_request(config, app, "suspend", note=reason)
    return await send_request(
        config, request, wait=wait, timeout=TIMEOUT, said=f"requested suspend of {app}"
    )


async def resume_app(config: GitopsConfig, *, app: str, wait: bool) -> int:
    config, _ = await with_generated(config)
    if problem := check_app(config, app):
        return _refuse(problem)
    request = build_request(config, app, "resume")
    said = f"requested resume of {app} (back to the head of {config.apps[app].branch})"
    return await send_request(config, request, wait=wait, timeout=TIMEOUT, said=said)


async def rollback_app(config: GitopsConfig, *, app: str, to: str, wait: bool) -> int:
    config, _ = await with_generated(config)
    if problem := check_app(config, app) or check_sha(to, "--to"):
        return _refuse(problem)
    request = build_request(config, app, "rollback", commit=CommitSha(to))
    said = f"requested rollback of {app} to {short(to)} (held there until `gitops resume {app}`)"
    return await send_request(config, request, wait=wait, timeout=TIMEOUT, said=said)
