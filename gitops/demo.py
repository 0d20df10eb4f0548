"""The local stack's demo: change a file, push it with git, send the signed webhook.

`gitops up` prints `python -m gitops.demo push --state FILE`; the state file holds the
working copy, the receiver URL and the webhook secret, so the secret never reaches a
terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "gitops demo",
    "GIT_AUTHOR_EMAIL": "demo@localhost",
    "GIT_COMMITTER_NAME": "gitops demo",
    "GIT_COMMITTER_EMAIL": "demo@localhost",
    "GIT_TERMINAL_PROMPT": "0",
}
CHANGED = "apps/guestbook/configmap.yaml"
SERVICES = "services"
"""Each directory under it is an app of the `services` app set of `gitops up`."""


@dataclass
class DemoState:
    workdir: Path
    repo_url: str
    webhook_url: str
    secret: str

    def save(self, path: Path) -> None:
        data = asdict(self) | {"workdir": str(self.workdir)}
        path.write_text(json.dumps(data))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> DemoState:
        data = json.loads(path.read_text())
        return cls(Path(data["workdir"]), data["repo_url"], data["webhook_url"], data["secret"])


async def git(cwd: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode().strip()


async def seed_repository(state: DemoState, examples: Path) -> None:
    """Create the working copy from `examples/apps` and push it as the first commit."""
    state.workdir.mkdir(parents=True)
    for part in ("apps", SERVICES):  # the example monorepo: apps, and services of a set
        shutil.copytree(examples / part, state.workdir / part)
    await git(state.workdir, "init", "--quiet", "--initial-branch=main")
    await git(state.workdir, "remote", "add", "origin", state.repo_url)
    await git(state.workdir, "add", "--all")
    await git(state.workdir, "commit", "--quiet", "-m", "examples")
    await git(state.workdir, "push", "--quiet", "origin", "HEAD:refs/heads/main")


def github_push_payload(
    *,
    repo_url: str,
    before: str,
    after: str,
    changed: list[str],
    message: str,
    added: list[str] | None = None,
    removed: list[str] | None = None,
) -> dict[str, object]:
    """A push payload shaped like GitHub's, for the receiver's /hooks/github."""
    now = datetime.now(UTC).isoformat()
    commit = {
        "id": after,
        "tree_id": after,
        "distinct": True,
        "message": message,
        "timestamp": now,
        "url": f"{repo_url}/commit/{after}",
        "author": {"name": "gitops demo"},
        "committer": {"name": "gitops demo"},
        "added": added or [],
        "removed": removed or [],
        "modified": changed,
    }
    name = repo_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{repo_url}/compare/{before[:12]}...{after[:12]}",
        "commits": [commit],
        "head_commit": commit,
        "repository": {
            "name": name,
            "full_name": f"local/{name}",
            "clone_url": repo_url,
            "html_url": repo_url.removesuffix(".git"),
            "url": repo_url.removesuffix(".git"),
        },
        "pusher": {"name": "gitops demo", "email": "demo@localhost"},
        "sender": {"login": "gitops-demo"},
    }


async def push_change(state: DemoState) -> int:
    target = state.workdir / CHANGED
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    text = target.read_text()
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("greeting:")]
    index = next(i for i, ln in enumerate(lines) if ln.strip() == "data:") + 1
    lines.insert(index, f'  greeting: "Hello from Git at {stamp}"')
    target.write_text("\n".join(lines) + "\n")
    before = await git(state.workdir, "rev-parse", "HEAD")
    await git(state.workdir, "commit", "--quiet", "-am", f"greeting at {stamp}")
    after = await git(state.workdir, "rev-parse", "HEAD")
    await git(state.workdir, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    payload = github_push_payload(
        repo_url=state.repo_url,
        before=before,
        after=after,
        changed=[CHANGED],
        message=f"greeting at {stamp}",
    )
    status, answer = await send_webhook(state, payload)
    print(f"pushed {after[:7]} ({CHANGED}); webhook answered {status} {answer}")
    return 0 if status == 202 else 1


async def change_service(state: DemoState, name: str, *, add: bool) -> int:
    """Add (or remove) `services/<name>`: a Namespace and a ConfigMap, one app of the set."""
    if not name or not all(c.isalnum() or c == "-" for c in name) or name != name.lower():
        print(f"gitops.demo: {name!r} is not a lowercase name of letters, digits and '-'")
        return 2
    directory = state.workdir / SERVICES / name
    files = [f"{SERVICES}/{name}/namespace.yaml", f"{SERVICES}/{name}/configmap.yaml"]
    before = await git(state.workdir, "rev-parse", "HEAD")
    if add:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "namespace.yaml").write_text(
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        )
        (directory / "configmap.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-settings\n"
            f"data:\n  service: {name}\n"
        )
        await git(state.workdir, "add", "--all")
    elif directory.exists():
        await git(state.workdir, "rm", "--quiet", "-r", f"{SERVICES}/{name}")
    else:
        print(f"gitops.demo: there is no {SERVICES}/{name} to remove")
        return 2
    verb = "add" if add else "remove"
    await git(state.workdir, "commit", "--quiet", "-m", f"{verb} service {name}")
    after = await git(state.workdir, "rev-parse", "HEAD")
    await git(state.workdir, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    payload = github_push_payload(
        repo_url=state.repo_url,
        before=before,
        after=after,
        changed=[],
        added=files if add else [],
        removed=[] if add else files,
        message=f"{verb} service {name}",
    )
    status, answer = await send_webhook(state, payload)
    print(f"pushed {after[:7]} ({verb} {SERVICES}/{name}); webhook answered {status} {answer}")
    return 0 if status == 202 else 1


async def send_webhook(state: DemoState, payload: dict[str, object]) -> tuple[int, str]:
    """POST a GitHub push payload signed with the stack's secret; (status, answer)."""
    body = json.dumps(payload).encode()
    signature = hmac.new(state.secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(state.webhook_url, data=body, headers=headers) as response,
    ):
        answer = await response.text()
    return response.status, answer.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops.demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="change a file, push it, send the signed webhook")
    push.add_argument("--state", required=True, help="the state file `gitops up` printed")
    for verb in ("add-service", "remove-service"):
        change = sub.add_parser(
            verb, help=f"{verb.split('-')[0]} services/NAME, push it, send the signed webhook"
        )
        change.add_argument("name", metavar="NAME", help="the service (and its namespace)")
        change.add_argument("--state", required=True, help="the state file `gitops up` printed")
    args = parser.parse_args(argv)
    try:
        state = DemoState.load(Path(args.state))
    except (OSError, KeyError, ValueError) as exc:
        print(f"gitops.demo: cannot read state {args.state}: {exc}", file=sys.stderr)
        return 2
    if args.command == "push":
        return asyncio.run(push_change(state))
    return asyncio.run(change_service(state, args.name, add=args.command == "add-service"))


if __name__ == "__main__":
    raise SystemExit(main())
