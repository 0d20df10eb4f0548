"""The operator's commands: `events tail`, `apps`, `sync APP`, `diff APP`.

They talk to Kafka like any other member of the pipeline: reading the event trail and
publishing requests, never touching a syncer directly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from gitops.display import format_event, short, steps
from gitops.generated import with_generated
from gitops.reading import read_events
from schemas import GitopsConfig, SyncRequested, Topics
from schemas.config import parse_duration
from schemas.events import (
    DriftDetected,
    PushReceived,
    SyncFailed,
    SyncReason,
    SyncRequestedData,
    SyncSkipped,
    SyncSucceeded,
)
from schemas.types import AppName, CommitSha

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class OperateError(Exception):
    """A command could not do what was asked; the message says why."""


def _topics(config: GitopsConfig) -> Topics:
    return Topics(config.kafka.topic_prefix)


async def events_tail(
    config: GitopsConfig,
    *,
    app: str | None,
    type_: str | None,
    since: str | None,
    follow: bool,
    as_json: bool,
) -> int:
    topics = _topics(config)
    after = None
    if since:
        try:
            after = datetime.now(UTC) - parse_duration(since)
        except ValueError as exc:
            print(f"gitops: --since: {exc}", file=sys.stderr)
            return EXIT_USAGE
    names = [topics.push_events, topics.sync_requests, topics.sync_events]
    async for event in read_events(config.kafka.bootstrap, names, follow=follow, since=after):
        if type_ and event.type != type_:
            continue
        if app and not _concerns(event, app):
            continue
        print(
            event.model_dump_json(exclude_none=True) if as_json else format_event(event), flush=True
        )
    return EXIT_OK


def _concerns(event: object, app: str) -> bool:
    if isinstance(event, PushReceived):
        return app in event.data.apps
    data = getattr(event, "data", None)
    return getattr(data, "app", None) == app


async def list_apps(config: GitopsConfig, *, as_json: bool) -> int:
    last: dict[str, SyncSucceeded | SyncFailed | SyncSkipped | DriftDetected] = {}
    ran: dict[str, list[str]] = {}
    """The hooks and waves of each app's last sync that ran (a skip runs none)."""
    config, origins = await with_generated(config)
    topics = _topics(config)
    async for event in read_events(config.kafka.bootstrap, [topics.sync_events]):
        if isinstance(event, SyncSucceeded | SyncFailed | SyncSkipped):
            last[event.data.app] = event
        if isinstance(event, SyncSucceeded | SyncFailed) and event.data.objects:
            ran[event.data.app] = steps(event.data.objects)
    from gitops.lifecycle import app_statuses, state_text

    statuses = await app_statuses(config)
    rows: list[dict[str, Any]] = []
    for name, spec in config.apps.items():
        seen = last.get(name)
        outcome = seen.type.rsplit(".", 1)[-1] if seen else "never synced"
        commit = getattr(seen.data, "commit", None) if seen else None
        rows.append(
            {
                "app": name,
                "set": origins.get(name),
                "repo": spec.repo,
                "branch": spec.branch,
                "path": spec.path,
                "cluster": spec.cluster,
                "namespace": spec.namespace,
                "last_outcome": outcome,
                "commit": commit,
                "time": seen.time.isoformat() if seen else None,
                "steps": ran.get(name, []),
                "state": state_text(statuses.get(name)),
                "status": (s.model_dump(mode="json") if (s := statuses.get(name)) else None),
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(
        f"{'APP':<18} {'SET':<12} {'REPO':<14} {'BRANCH':<10} {'PATH':<22} {'CLUSTER':<10}"
        f" {'LAST':<13} {'COMMIT':<8} {'STEPS':<26} STATE"
    )
    for row in rows:
        print(
            f"{row['app']:<18} {row['set'] or '-':<12} {row['repo']:<14} {row['branch']:<10} "
            f"{row['path']:<22} {row['cluster']:<10} {row['last_outcome']:<13} "
            f"{short(row['commit']):<8} {', '.join(row['steps']) or '-':<26} "
            f"{row['state']}".rstrip()
        )
    return EXIT_OK


async def request_sync(
    config: GitopsConfig,
    *,
    app: str,
    commit: str | None,
    wait: bool,
    force: bool = False,
    timeout: float = 120.0,
) -> int:
    config, _ = await with_generated(config)
    problem = check_app(config, app) or (check_sha(commit, "--commit") if commit else None)
    if problem is not None:
        print(f"gitops: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if not force:
        from gitops.lifecycle import refusal

        refused = await refusal(config, app)
        if refused is not None:
            print(f"gitops: {refused}", file=sys.stderr)
            return EXIT_USAGE
    request = build_request(
        config, app, "manual", commit=CommitSha(commit) if commit else None, force=force
    )
    target = short(commit) if commit else "branch head"
    return await send_request(
        config, request, wait=wait, timeout=timeout, said=f"requested sync of {app} ({target})"
    )


def check_app(config: GitopsConfig, app: str) -> str | None:
    """Why `app` cannot be operated on (not configured), or None."""
    if app in config.apps:
        return None
    known = ", ".join(sorted(config.apps)) or "none"
    return f"unknown app '{app}' (known: {known})"


def check_sha(commit: str, option: str) -> str | None:
    return None if _is_full_sha(commit) else f"{option} must be a full 40-character hex sha"


def build_request(
    config: GitopsConfig,
    app: str,
    reason: SyncReason,
    *,
    commit: CommitSha | None = None,
    note: str | None = None,
    force: bool = False,
) -> SyncRequested:
    """A request from the command line, addressed like the receiver's for the same app."""
    spec = config.apps[app]
    return SyncRequested(
        source="/gitops/cli",
        subject=app,
        data=SyncRequestedData(
            app=AppName(app),
            repo_url=config.repositories[spec.repo].url,
            branch=spec.branch,
            commit=commit,
            reason=reason,
            note=note,
            force=force,
        ),
    )


async def send_request(
    config: GitopsConfig, request: SyncRequested, *, wait: bool, timeout: float, said: str
) -> int:
    """Publish `request` keyed by its app; with `wait`, print its outcome (exit 1 if failed)."""
    app = request.data.app
    topics = _topics(config)
    outcome_task = None
    if wait:
        positioned = asyncio.Event()
        outcome_task = asyncio.create_task(_wait_outcome(config, request.id, positioned))
        ready = asyncio.create_task(positioned.wait())
        await asyncio.wait([ready, outcome_task], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if outcome_task.done() and outcome_task.exception() is not None:
            await outcome_task  # the broker did not answer the reader: say so, publish nothing
    from members.kafka import start_producer  # the one conversion of an idempotence refusal

    try:
        producer = await start_producer(config.kafka)
    except BaseException:
        if outcome_task is not None:
            outcome_task.cancel()
        raise
    try:
        await producer.send_and_wait(topics.sync_requests, request.to_bytes(), key=app.encode())
    finally:
        await producer.stop()
    print(f"{said}, id {request.id}")
    if outcome_task is None:
        return EXIT_OK
    try:
        outcome = await asyncio.wait_for(outcome_task, timeout)
    except TimeoutError:
        print(f"gitops: no outcome for {app} within {int(timeout)}s", file=sys.stderr)
        return EXIT_FINDING
    except OperateError as exc:
        print(f"gitops: cannot wait for the outcome: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(format_event(outcome))
    return EXIT_OK if isinstance(outcome, SyncSucceeded | SyncSkipped) else EXIT_FINDING


def _is_full_sha(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)


async def _wait_outcome(
    config: GitopsConfig, request_id: str, positioned: asyncio.Event
) -> SyncSucceeded | SyncFailed | SyncSkipped:
    topics = _topics(config)
    async for event in read_events(
        config.kafka.bootstrap,
        [topics.sync_events],
        follow=True,
        from_end=True,
        positioned=positioned,
    ):
        if isinstance(event, SyncSucceeded | SyncFailed | SyncSkipped) and (
            event.data.request_id == request_id
        ):
            return event
    raise OperateError(f"topic {topics.sync_events} is not readable on {config.kafka.bootstrap}")
