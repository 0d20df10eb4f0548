"""`gitops up`: the whole pipeline on one machine, on embedded defaults.

Starts what is not configured — the Tansu broker, the Kubernetes API emulator as
cluster `local`, a Git server holding `examples/` — then the receiver, N syncers
and the dashboard, prints how to use it, and streams sync events until Ctrl-C. Everything it
starts, and its temporary directory, is gone when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from gitops.broker import EmbeddedBroker, free_port
from gitops.demo import DemoState, seed_repository
from gitops.display import format_event
from gitops.gitserver import GitHttpServer
from gitops.printer import NotificationPrinter
from gitops.processes import ChildProcess
from gitops.reading import read_events
from gitops.topics import ensure_topics
from schemas import Topics, load_config
from schemas.loading import BOOTSTRAP_ENV

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class UpError(Exception):
    """A part of the local stack did not start; the message names it and shows its log."""


def _say(line: str = "") -> None:
    print(line, flush=True)


async def _wait_http(
    url: str, what: str, process: ChildProcess | None, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process is not None and not process.running:
                raise UpError(f"{what} exited at start-up:\n{process.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    tail = process.tail() if process is not None else ""
    raise UpError(f"{what} not ready at {url} after {int(timeout)}s\n{tail}")


def _default_config(
    workdir: Path,
    *,
    bootstrap: str,
    repo_url: str,
    secret: str,
    kubeconfig: Path,
    printer: NotificationPrinter,
) -> str:
    return f"""\
kafka:
  bootstrap: {bootstrap}
  topic_prefix: gitops
  idempotence: false
clusters:
  local: {{kubeconfig: {kubeconfig}}}
repositories:
  examples:
    url: {repo_url}
    webhook_secret: {{value: {secret}}}
apps:
  guestbook:
    repo: examples
    path: apps/guestbook
    cluster: local
    namespace: guestbook
    interval: 30s
  monitoring:
    repo: examples
    path: apps/monitoring
    cluster: local
    namespace: monitoring
    self_heal: false
    interval: 30s
app_sets:
  services:                 # one app per directory under services/
    repo: examples
    directories: {{include: ["services/*"]}}
    prune: true             # a removed directory takes its objects with it
    interval: 30s
    template:
      cluster: local
      namespace: "{{{{ basename }}}}"
      interval: 30s
syncer:
  cache_dir: {workdir / "cache"}
  health_timeout: 15s
notifications:
- name: local
  on: [requested, succeeded, failed, skipped, drift]
  provider: webhook
  url: {printer.url}
  secret: {{value: {secret}}}
"""


async def run_up(*, config_path: str | None, syncers: int) -> int:
    if syncers < 1:
        raise UpError("--syncers must be at least 1")
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    if main is not None:
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="gitops-up-"))
    try:
        async with AsyncExitStack() as stack:
            await _up(stack, workdir, config_path, syncers)
    except UpError as exc:
        print(f"gitops up: {exc}", file=sys.stderr)
        return 2
    except asyncio.CancelledError:
        _say("\nstopped; everything cleaned up")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
    return 0


async def _up(stack: AsyncExitStack, workdir: Path, config_path: str | None, syncers: int) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    user = load_config(config_path) if config_path else None
    bootstrap = os.environ.get(BOOTSTRAP_ENV) or (user.kafka.bootstrap if user else None)
    if bootstrap is None:
        _say("starting Kafka-protocol broker (Tansu) ...")
        broker = await stack.enter_async_context(EmbeddedBroker(log_path=logs / "broker.log"))
        bootstrap = broker.bootstrap

    demo: DemoState | None = None
    if user is not None:
        config_file = Path(config_path or "")
        config = user.with_bootstrap(bootstrap)
    else:
        _say("starting Kubernetes API emulator (cluster 'local') ...")
        kubeconfig = workdir / "kubeconfig"
        api_port = free_port()
        cluster = ChildProcess(
            "devcluster",
            ["devcluster", "--port", str(api_port), "--kubeconfig", str(kubeconfig)],
            log_dir=logs,
        )
        await stack.enter_async_context(cluster)
        await _wait_http(f"http://127.0.0.1:{api_port}/version", "the emulator", cluster)

        _say("starting Git server with examples/ ...")
        git = await stack.enter_async_context(GitHttpServer(workdir / "git"))
        git.create_repo("examples")
        secret = secrets.token_hex(16)
        printer = await stack.enter_async_context(NotificationPrinter(secret, _say))
        receiver_port = free_port()
        demo = DemoState(
            workdir=workdir / "work",
            repo_url=git.repo_url("examples"),
            webhook_url=f"http://127.0.0.1:{receiver_port}/hooks/github",
            secret=secret,
        )
        await seed_repository(demo, EXAMPLES)
        demo.save(workdir / "demo.json")
        config_file = workdir / "gitops.yaml"
        config_file.write_text(
            _default_config(
                workdir,
                bootstrap=bootstrap,
                repo_url=demo.repo_url,
                secret=secret,
                kubeconfig=kubeconfig,
                printer=printer,
            )
        )
        config = load_config(config_file)

    topics = Topics(config.kafka.topic_prefix)
    await ensure_topics(config.kafka)
    env = {BOOTSTRAP_ENV: bootstrap}
    port = int(demo.webhook_url.rsplit(":", 1)[1].split("/")[0]) if demo else 8080
    receiver = ChildProcess(
        "receiver",
        ["receiver", "--config", str(config_file), "--host", "127.0.0.1", "--port", str(port)],
        log_dir=logs,
        env=env,
    )
    await stack.enter_async_context(receiver)
    for i in range(syncers):
        await stack.enter_async_context(
            ChildProcess(
                f"syncer-{i + 1}",
                [
                    "syncer",
                    "--config",
                    str(config_file),
                    "--id",
                    f"syncer-{i + 1}",
                    "--http-port",
                    "0",
                ],
                log_dir=logs,
                env=env,
            )
        )
    ui_port = free_port()
    ui = ChildProcess(
        "ui",
        ["ui", "--config", str(config_file), "--host", "127.0.0.1", "--port", str(ui_port)],
        log_dir=logs,
        env=env,
    )
    await stack.enter_async_context(ui)
    await _wait_http(f"http://127.0.0.1:{port}/readyz", "the receiver", receiver)
    await _wait_http(f"http://127.0.0.1:{ui_port}/healthz", "the dashboard", ui)
    if config.notifications:
        notifier_port = free_port()
        args = ["notifier", "--config", str(config_file), "--id", "notifier-1"]
        notifier = ChildProcess(
            "notifier", [*args, "--http-port", str(notifier_port)], log_dir=logs, env=env
        )
        await stack.enter_async_context(notifier)
        # Ready once in its group: a new group starts at the end, so nothing is missed after.
        await _wait_http(
            f"http://127.0.0.1:{notifier_port}/readyz", "the notifier", notifier, timeout=60
        )

    _say()
    _say(
        f"webhook URL      http://127.0.0.1:{port}/hooks/github  (also /hooks/gitlab, /hooks/gitea)"
    )
    _say(f"dashboard URL    http://127.0.0.1:{ui_port}/  (apps, objects, diffs, live events)")
    _say(f"topics           {', '.join(topics.all())}")
    _say(f"kafka bootstrap  {bootstrap}")
    if demo is not None:
        _say(f"kubeconfig       {workdir / 'kubeconfig'}")
        _say(f"git repository   {demo.repo_url}")
        _say()
        state = workdir / "demo.json"
        _say("push a change and send a signed webhook:")
        _say(f"  {sys.executable} -m gitops.demo push --state {state}")
        _say("add (or remove) a service directory: its app is created (or deleted) live:")
        _say(f"  {sys.executable} -m gitops.demo add-service NAME --state {state}")
    if config.notifications:
        rules = ", ".join(f"{r.name} ({r.provider})" for r in config.notifications)
        _say(f"notifications    {rules}")
    _say(f"logs             {workdir / 'logs'}")
    _say()
    _say("live sync events (Ctrl-C stops everything):")
    async for event in read_events(bootstrap, [topics.sync_events], follow=True):
        _say(format_event(event))
