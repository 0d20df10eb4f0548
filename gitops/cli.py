"""`gitops`: one command for every part of the pipeline.

Each subcommand imports its part lazily, so `gitops config check` works without the
broker client or the Kubernetes client being importable, and `receiver`, `syncer` and
`devcluster` stay independent of each other. Exit codes: 0 ok, 1 a finding (e.g. drift
in `diff`), 2 usage or configuration error, 3 a dependency (Kafka, a cluster's API
server, a Git host) did not answer. A command that cannot start says what failed and
which key or file to fix in one line (one JSON log line for the services), never with a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from gitops.eventloop import event_loop_factory
from gitops.logs import configure_logging
from schemas import (
    ConfigError,
    GitopsConfig,
    IdempotenceRefused,
    SessionTimeoutRefused,
    StartupError,
    load_config,
)

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2
CONFIG_ENV = "GITOPS_CONFIG"
SERVICES = ("receiver", "syncer", "notifier", "ui")
"""The long-running commands: they log JSON lines, so their start-up errors are one too."""


class UsageError(Exception):
    """A mistake in how the command was called; printed without a traceback, exit 2."""


def _config_path(args: argparse.Namespace) -> str:
    path: str | None = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    if not path:
        raise UsageError(f"no configuration: pass --config FILE or set {CONFIG_ENV}")
    return path


def _load(args: argparse.Namespace, *, fetches: bool = False) -> GitopsConfig:
    """The config; `fetches` for commands that fetch, which need every SSH URL's host keys."""
    return load_config(_config_path(args), require_ssh_auth=fetches)


def _run(
    coro: Coroutine[Any, Any, int | None] | Coroutine[Any, Any, None],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro) or EXIT_OK
    except KeyboardInterrupt:
        return 130


def cmd_config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file, require_ssh_auth=True)
    print(f"{args.file}: ok")
    print(f"kafka: {config.kafka.bootstrap} (topics {config.kafka.topic_prefix}.*)")
    print(f"clusters ({len(config.clusters)}):")
    for name, cluster in config.clusters.items():
        where = "in-cluster" if cluster.in_cluster else f"{cluster.kubeconfig}"
        context = f" context {cluster.context}" if cluster.context else ""
        print(f"  {name}: {where}{context}")
    print(f"repositories ({len(config.repositories)}):")
    for name, repo in config.repositories.items():
        secrets = len(repo.webhook_secrets())
        auth = f", {repo.auth.kind()}" if repo.auth is not None and repo.auth.kind() else ""
        print(f"  {name}: {repo.url} ({secrets} webhook secret{'s' if secrets != 1 else ''}{auth})")
    print(f"apps ({len(config.apps)}):")
    for name, app in config.apps.items():
        flags = ", ".join(f for f, on in (("prune", app.prune), ("self-heal", app.self_heal)) if on)
        print(
            f"  {name}: {app.repo}@{app.branch}:{app.path} -> {app.cluster}/{app.namespace}"
            f" every {int(app.interval.total_seconds())}s" + (f" ({flags})" if flags else "")
        )
    if config.app_sets:
        print(f"app sets ({len(config.app_sets)}):")
    for name, app_set in config.app_sets.items():
        kind = "directories" if app_set.directories is not None else "files"
        globs = ", ".join(app_set.generator.include)
        print(f"  {name}: {app_set.repo}@{app_set.branch}: one app per {kind} {globs}")
    return EXIT_OK


def cmd_schemas_export(args: argparse.Namespace) -> int:
    from schemas.export import export_schemas

    for path in export_schemas(Path(args.dir)):
        print(path)
    return EXIT_OK


async def _after_topics(config: GitopsConfig, part: Coroutine[Any, Any, None]) -> None:
    """Create missing topics first: a broker's auto-created topic has one partition.

    A broker that does not answer is retried for `kafka.startup_timeout` (a pod starting
    beside its broker, as Flux's and Argo CD's controllers wait for theirs), then the
    service exits 3 and its restart policy takes over."""
    from gitops.startup import kafka_reachable
    from gitops.topics import ensure_topics

    try:
        await ensure_topics(config.kafka, wait=config.kafka.startup_timeout.total_seconds())
    except BaseException:
        part.close()
        raise
    await kafka_reachable(config.kafka, part)


async def _reaching_kafka(config: GitopsConfig, part: Coroutine[Any, Any, int]) -> int:
    """A one-shot command's body: it does not wait for a broker, a user is waiting.

    aiokafka's own connection errors are not printed: `KafkaUnavailable` says it once."""
    from gitops.startup import kafka_reachable

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    return await kafka_reachable(config.kafka, part)


def cmd_receiver(args: argparse.Namespace) -> int:
    from receiver.service import run_receiver  # type: ignore[import-not-found, unused-ignore]

    config = _load(args)
    configure_logging("receiver", config, args.log_level)
    return _run(
        _after_topics(config, run_receiver(config, host=args.host, port=args.port)),
        loop_factory=event_loop_factory(),
    )


def cmd_syncer(args: argparse.Namespace) -> int:
    from syncer.service import run_syncer  # type: ignore[import-not-found, unused-ignore]

    config = _load(args, fetches=True)
    if args.group_id:
        settings = config.syncer.model_copy(update={"group_id": args.group_id})
        config = config.model_copy(update={"syncer": settings})
    configure_logging("syncer", config, args.log_level)
    http_port = None if args.no_http else args.http_port
    return _run(
        _after_topics(config, run_syncer(config, syncer_id=args.id, http_port=http_port)),
        loop_factory=event_loop_factory(),
    )


def cmd_notifier(args: argparse.Namespace) -> int:
    from notifier.service import run_notifier  # type: ignore[import-not-found, unused-ignore]

    config = _load(args)
    if not config.notifications:
        raise UsageError(f"{_config_path(args)}: no rules under 'notifications:', nothing to send")
    configure_logging("notifier", config, args.log_level)
    http_port = None if args.no_http else args.http_port
    return _run(
        _after_topics(config, run_notifier(config, notifier_id=args.id, http_port=http_port)),
        loop_factory=event_loop_factory(),
    )


def cmd_devcluster(args: argparse.Namespace) -> int:
    from devcluster.cli import serve

    return _run(
        serve(host=args.host, port=args.port, kubeconfig_path=args.kubeconfig),
        loop_factory=event_loop_factory(),
    )


def cmd_up(args: argparse.Namespace) -> int:
    from gitops.up import run_up  # type: ignore[import-not-found, unused-ignore]

    config_path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    return _run(run_up(config_path=config_path, syncers=args.syncers))


def cmd_events_tail(args: argparse.Namespace) -> int:
    from gitops.operate import events_tail

    config = _load(args)
    return _run(
        _reaching_kafka(
            config,
            events_tail(
                config,
                app=args.app,
                type_=args.type,
                since=args.since,
                follow=args.follow,
                as_json=args.json,
            ),
        )
    )


def cmd_apps(args: argparse.Namespace) -> int:
    from gitops.operate import list_apps

    config = _load(args)
    return _run(_reaching_kafka(config, list_apps(config, as_json=args.json)))


def cmd_sync(args: argparse.Namespace) -> int:
    from gitops.operate import request_sync

    config = _load(args)
    sync = request_sync(config, app=args.app, commit=args.commit, wait=args.wait, force=args.force)
    return _run(_reaching_kafka(config, sync))


def cmd_suspend(args: argparse.Namespace) -> int:
    from gitops.lifecycle import suspend_app

    config = _load(args)
    suspend = suspend_app(config, app=args.app, reason=args.reason, wait=not args.no_wait)
    return _run(_reaching_kafka(config, suspend))


def cmd_resume(args: argparse.Namespace) -> int:
    from gitops.lifecycle import resume_app

    config = _load(args)
    return _run(_reaching_kafka(config, resume_app(config, app=args.app, wait=not args.no_wait)))


def cmd_rollback(args: argparse.Namespace) -> int:
    from gitops.lifecycle import rollback_app

    config = _load(args)
    rollback = rollback_app(config, app=args.app, to=args.to, wait=not args.no_wait)
    return _run(_reaching_kafka(config, rollback))


def cmd_diff(args: argparse.Namespace) -> int:
    from gitops.diffing import diff_app  # type: ignore[import-not-found, unused-ignore]

    config = _load(args, fetches=True)
    return _run(_reaching_kafka(config, diff_app(config, app=args.app, as_json=args.json)))


def cmd_ui(args: argparse.Namespace) -> int:
    from dashboard.auth import TokenRequired
    from dashboard.service import run_ui

    path = _config_path(args)
    config = load_config(path)
    configure_logging("ui", config, args.log_level)
    try:
        return _run(
            run_ui(config, host=args.host, port=args.port, source=path),
            loop_factory=event_loop_factory(),
        )
    except TokenRequired as exc:
        print(f"gitops ui: {exc}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gitops",
        description="GitOps as an event-driven pipeline: webhooks, Kafka, syncers, clusters.",
        epilog="Exit codes: 0 ok, 1 a finding (e.g. drift in `diff`), 2 usage or config error,"
        " 3 a dependency (Kafka, a cluster, a Git host) did not answer.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str,
        help_: str,
        handler: Callable[[argparse.Namespace], int],
        *,
        config: bool = True,
        parent: Any = sub,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        if config:
            p.add_argument(
                "--config", metavar="FILE", help=f"configuration file (default ${CONFIG_ENV})"
            )
        if name in ("receiver", "syncer", "notifier", "ui"):
            p.add_argument(
                "--log-level",
                default=os.environ.get("GITOPS_LOG_LEVEL", "INFO"),
                choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                help="log level (default INFO, env GITOPS_LOG_LEVEL)",
            )
        p.set_defaults(handler=handler)
        return p

    p = command("receiver", "serve Git host webhooks and publish them to Kafka", cmd_receiver)
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")

    p = command("syncer", "run one syncer of the consumer group gitops-syncers", cmd_syncer)
    p.add_argument(
        "--id", default=None, help="member name shown in events and logs (default host-pid)"
    )
    p.add_argument(
        "--group-id",
        default=os.environ.get("GITOPS_SYNCER_GROUP"),
        help="consumer group to join (default: syncer.group_id, env GITOPS_SYNCER_GROUP)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=int(os.environ.get("GITOPS_SYNCER_HTTP_PORT", "8081")),
        help="port of /healthz, /readyz, /metrics (default 8081, env GITOPS_SYNCER_HTTP_PORT)",
    )
    p.add_argument("--no-http", action="store_true", help="serve no HTTP endpoints")

    p = command(
        "notifier",
        "deliver notifications and commit statuses (consumer group gitops-notifiers)",
        cmd_notifier,
    )
    p.add_argument(
        "--id", default=None, help="member name shown in events and logs (default host-pid)"
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=int(os.environ.get("GITOPS_NOTIFIER_HTTP_PORT", "8082")),
        help="port of /healthz, /readyz, /metrics (default 8082, env GITOPS_NOTIFIER_HTTP_PORT)",
    )
    p.add_argument("--no-http", action="store_true", help="serve no HTTP endpoints")

    p = command("ui", "serve the read-only web dashboard", cmd_ui)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")

    p = command("up", "run the whole local stack on embedded defaults", cmd_up)
    p.add_argument("--syncers", type=int, default=2, help="syncer processes to start (default 2)")

    p = command("devcluster", "serve the Kubernetes API emulator", cmd_devcluster, config=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="port to listen on (default 6443)")
    p.add_argument("--kubeconfig", default=None, metavar="FILE", help="write a kubeconfig here")

    config_p = sub.add_parser("config", help="work with configuration files")
    config_sub = config_p.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    p = command(
        "check",
        "validate a configuration file (exit 0 ok, 2 with every error)",
        cmd_config_check,
        config=False,
        parent=config_sub,
    )
    p.add_argument("file", help="the configuration file")

    schemas_p = sub.add_parser("schemas", help="JSON Schemas of the configuration and events")
    schemas_sub = schemas_p.add_subparsers(dest="schemas_command", metavar="COMMAND", required=True)
    p = command(
        "export",
        "write one JSON Schema per event type and one for the config",
        cmd_schemas_export,
        config=False,
        parent=schemas_sub,
    )
    p.add_argument("dir", help="directory to write into")

    events_p = sub.add_parser("events", help="read the event trail")
    events_sub = events_p.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    p = command(
        "tail", "print sync and push events, newest last", cmd_events_tail, parent=events_sub
    )
    p.add_argument("--app", help="only this app")
    p.add_argument("--type", help="only this event type, e.g. gitops.sync.failed")
    p.add_argument("--since", default=None, help="only events newer than this, e.g. 10m")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--json", action="store_true", help="print raw CloudEvents, one per line")

    p = command("apps", "list apps with their last sync outcome", cmd_apps)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("sync", "request a sync of one app now (reason: manual)", cmd_sync)
    p.add_argument("app", help="app name")
    p.add_argument("--commit", help="commit sha to apply (default: branch head)")
    p.add_argument("--wait", action="store_true", help="wait for and print the outcome")
    p.add_argument(
        "--force", action="store_true", help="apply even though the app is suspended (once)"
    )

    no_wait = "publish the request and return without waiting for its outcome"
    p = command(
        "suspend", "hold an app: webhooks, polls and drift repair apply nothing", cmd_suspend
    )
    p.add_argument("app", help="app name")
    p.add_argument("--reason", help="why, shown by `gitops apps` and in the events")
    p.add_argument("--no-wait", action="store_true", help=no_wait)

    p = command(
        "resume", "release a suspended or rolled-back app: sync its branch head", cmd_resume
    )
    p.add_argument("app", help="app name")
    p.add_argument("--no-wait", action="store_true", help=no_wait)

    p = command(
        "rollback", "apply an older commit and hold the app there until resumed", cmd_rollback
    )
    p.add_argument("app", help="app name")
    p.add_argument("--to", required=True, metavar="SHA", help="full sha of the commit to apply")
    p.add_argument("--no-wait", action="store_true", help=no_wait)

    p = command("diff", "show how the live cluster differs from Git (exit 1 on drift)", cmd_diff)
    p.add_argument("app", help="app name")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(
            f"{len(exc.issues)} error{'s' if len(exc.issues) != 1 else ''} found", file=sys.stderr
        )
        return EXIT_USAGE
    except UsageError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (IdempotenceRefused, SessionTimeoutRefused) as exc:
        # The configuration asks for what this broker cannot do: say which file to edit.
        print(f"gitops: {_config_path(args)}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StartupError as exc:
        return _report(args, exc)
    return result


def _report(args: argparse.Namespace, exc: StartupError) -> int:
    """One line naming the configuration file and what in it (or behind it) failed."""
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    message = f"{path}: {exc}" if path else str(exc)
    if args.command in SERVICES:
        logging.getLogger("gitops").error(
            "cannot start: %s",
            message,
            extra={"exit_code": exc.exit_code, "reason": type(exc).__name__},
        )
    else:
        print(f"gitops {args.command}: {message}", file=sys.stderr)
    return exc.exit_code
