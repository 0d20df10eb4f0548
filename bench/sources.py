"""Render and verification figures: what Kustomize/Helm sources and signed commits cost.

Each figure is a ratio against the same tool run by hand in the same run, so it does
not depend on the machine:

* kustomize: an overlay (base of `--objects` objects, patch, configMapGenerator,
  namespace) rendered by `Renderer.render` cold (snapshot of the repository + reference
  checks + `kubectl kustomize` + cleanup) and warm (the per-commit render cache), vs
  `kubectl kustomize DIR` on a directory that already exists;
* helm: a chart with `--objects` templated objects, cold (snapshot + Helm SDK in a
  child process) and warm, vs the Helm SDK called in-process on the directory;
* verify: `CommitVerifier.verify` of an SSH-signed commit vs `git verify-commit`.

    python bench/sources.py [--objects 50] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import helm_python

from schemas.config import AppConfig, CommitVerification
from syncer.sources import Renderer
from syncer.verification import CommitVerifier, split_signature


def kustomize_repo(objects: int) -> dict[str, bytes]:
    files = {
        "base/kustomization.yaml": "resources:\n"
        + "".join(f"  - cm-{i}.yaml\n" for i in range(objects)),
        "overlay/kustomization.yaml": (
            "namespace: prod\nnamePrefix: prod-\nresources: [../base]\n"
            "patches: [{path: patch.yaml}]\n"
            "configMapGenerator: [{name: settings, literals: [A=1, B=2]}]\n"
        ),
        "overlay/patch.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-0}\n"
        "data: {patched: 'yes'}\n",
    }
    for i in range(objects):
        files[f"base/cm-{i}.yaml"] = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{k: v{i}}}\n"
        )
    return {k: v.encode() for k, v in files.items()}


def chart_repo(objects: int) -> dict[str, bytes]:
    files = {
        "chart/Chart.yaml": "apiVersion: v2\nname: bench\nversion: 0.1.0\n",
        "chart/values.yaml": f"count: {objects}\nlabel: bench\n",
        "chart/templates/cms.yaml": (
            "{{- range $i := until (int .Values.count) }}\n---\napiVersion: v1\n"
            "kind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\n"
            "  labels: {app: {{ $.Values.label | quote }}}\ndata: {k: v{{ $i }}}\n{{- end }}\n"
        ),
    }
    return {k: v.encode() for k, v in files.items()}


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def signed_repo(root: Path) -> tuple[Path, dict[str, str], str, bytes]:
    """A repository with one SSH-signed commit: (path, env, public key, raw commit)."""
    git = root / "git"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root)}
    key = root / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    (root / "allowed").write_text(f"dev@example.test {public}\n")
    for args in (
        ["init", "-q", str(git)],
        ["-C", str(git), "config", "user.email", "dev@example.test"],
        ["-C", str(git), "config", "user.name", "Dev"],
        ["-C", str(git), "config", "gpg.format", "ssh"],
        ["-C", str(git), "config", "user.signingkey", str(key)],
        ["-C", str(git), "config", "gpg.ssh.allowedSignersFile", str(root / "allowed")],
        ["-C", str(git), "commit", "-q", "-S", "--allow-empty", "-m", "signed"],
    ):
        subprocess.run(["git", *args], check=True, env=env)
    raw = subprocess.run(
        ["git", "-C", str(git), "cat-file", "commit", "HEAD"],
        check=True, capture_output=True, env=env,
    ).stdout  # fmt: skip
    return git, env, public, raw


async def timed(rounds: int, call: Callable[[int], Awaitable[object]]) -> float:
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(name: str, baseline: float, cold: float, warm: float | None = None) -> None:
    line = f"{name:10} baseline {baseline * 1000:8.1f} ms | ours cold {cold * 1000:8.1f} ms"
    line += f" ({cold / baseline:5.2f}x)"
    if warm is not None:
        line += f" | warm {warm * 1000:7.3f} ms ({warm / baseline:7.4f}x)"
    print(line)


async def main(objects: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        renderer = Renderer(root / "snapshots")

        repo = kustomize_repo(objects)
        write(root / "k", repo)
        app = AppConfig(repo="r", cluster="c", path="overlay")

        async def kubectl(_: int) -> None:
            proc = await asyncio.create_subprocess_exec(
                "kubectl", "kustomize", str(root / "k/overlay"),
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await proc.wait()

        async def ours_k(i: int) -> None:
            await renderer.render(app, repo, commit=f"k{i}", app_name="a")

        async def warm_k(_: int) -> None:
            await renderer.render(app, repo, commit="k0", app_name="a")

        report(
            "kustomize",
            await timed(rounds, kubectl),
            await timed(rounds, ours_k),
            await timed(rounds, warm_k),
        )

        chart = chart_repo(objects)
        write(root / "h", chart)
        happ = AppConfig(repo="r", cluster="c", path="chart")

        async def sdk(_: int) -> None:
            with helm_python.Chart.load(root / "h/chart") as loaded:
                loaded.render({}, name="a", namespace="default")

        async def ours_h(i: int) -> None:
            await renderer.render(happ, chart, commit=f"h{i}", app_name="a")

        async def warm_h(_: int) -> None:
            await renderer.render(happ, chart, commit="h0", app_name="a")

        report(
            "helm",
            await timed(rounds, sdk),
            await timed(rounds, ours_h),
            await timed(rounds, warm_h),
        )

        git, env, public, raw = await asyncio.to_thread(signed_repo, root)
        signed = split_signature(raw)
        verifier = CommitVerifier(root / "verify")
        policy = CommitVerification(ssh_allowed_signers=[public])

        async def git_verify(_: int) -> None:
            proc = await asyncio.create_subprocess_exec(
                "git", "-C", str(git), "verify-commit", "HEAD", env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert await proc.wait() == 0

        async def ours_v(_: int) -> None:
            await verifier.verify(policy, "0" * 40, signed, repository="bench")

        report("verify", await timed(rounds, git_verify), await timed(rounds, ours_v))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.rounds))
