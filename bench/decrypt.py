"""SOPS decryption figures: what a directory app with encrypted Secrets costs to render.

* cold: `Renderer.render` of an app with `--secrets` SOPS-encrypted Secrets and
  `--plain` plain manifests, every file decrypted by a `sops` child process, against the
  floor of the same `sops decrypt` calls run one after the other by hand;
* warm: the same render again (the decryptor's in-memory cache: no `sops` runs);
* plain: the render of the `--plain` manifests alone with and without the decryptor's
  check for encrypted files, which every sync of every app pays.

Uses the test bed's sops and age-keygen (built into its cache when missing).

    python bench/decrypt.py [--secrets 20] [--plain 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from schemas.config import AppConfig
from syncer.sources import Renderer
from syncer.sources.decryption import Decryptor
from testbed import building


def tools() -> tuple[Path, Path]:
    sops, age = building.sops(), building.age()
    building.build_go(sops)
    building.build_go(age)
    return sops.binary("sops"), age.binary("age-keygen")


def age_key(keygen: Path) -> tuple[str, str]:
    out = subprocess.run([str(keygen)], check=True, capture_output=True, text=True).stdout
    identity = next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-"))
    recipient = next(line.split(": ")[1] for line in out.splitlines() if "public key" in line)
    return identity, recipient


def encrypt(sops: Path, text: str, recipient: str) -> bytes:
    argv = [str(sops), "encrypt", "--age", recipient, "--encrypted-regex", "^stringData$"]
    argv += ["--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"]
    return subprocess.run(argv, input=text.encode(), check=True, capture_output=True).stdout


def by_hand(sops: Path, files: list[bytes], identity: str, home: str) -> float:
    started = time.perf_counter()
    env = {"PATH": os.environ["PATH"], "HOME": home, "SOPS_AGE_KEY": identity}
    for content in files:
        argv = [str(sops), "decrypt", "--input-type", "yaml", "--output-type", "yaml"]
        subprocess.run(
            [*argv, "/dev/stdin"], input=content, check=True, capture_output=True, env=env
        )
    return time.perf_counter() - started


async def render(renderer: Renderer, app: AppConfig, files: dict[str, bytes]) -> float:
    started = time.perf_counter()
    await renderer.render(app, files, commit="c", app_name="bench")
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=20)
    parser.add_argument("--plain", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sops, keygen = tools()
    os.environ["PATH"] = f"{sops.parent}{os.pathsep}{os.environ['PATH']}"
    identity, recipient = age_key(keygen)
    os.environ["BENCH_AGE_KEY"] = identity
    app = AppConfig.model_validate(
        {
            "repo": "r",
            "cluster": "c",
            "path": "app",
            "decryption": {"provider": "sops", "keys": {"env": "BENCH_AGE_KEY"}},
        }
    )
    secrets = {
        f"app/secret-{i}.yaml": encrypt(
            sops,
            f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s{i}}}\n"
            f"stringData: {{password: pw-{i}-{os.urandom(8).hex()}}}\n",
            recipient,
        )
        for i in range(args.secrets)
    }
    plain = {
        f"app/cm-{i}.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"
        f"data: {{k: v{i}}}\n".encode()
        for i in range(args.plain)
    }
    cold, warm, floor, checked, unchecked = [], [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            renderer = Renderer(Path(scratch) / "s", decryptor=Decryptor(Path(scratch)))
            cold.append(await render(renderer, app, {**secrets, **plain}))
            warm.append(await render(renderer, app, {**secrets, **plain}))
            floor.append(by_hand(sops, list(secrets.values()), identity, scratch))
            checked.append(await render(renderer, app, plain))
            started = time.perf_counter()
            dict(plain)  # what a directory app's render was before: a copy of its files
            unchecked.append(time.perf_counter() - started)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f} ms"

    print(f"{args.secrets} encrypted + {args.plain} plain files, median of {args.rounds} rounds")
    ratio = statistics.median(cold) / statistics.median(floor)
    print(f"cold render:         {ms(cold)}  ({ratio:.2f}x sops by hand: {ms(floor)})")
    print(f"warm render (cache): {ms(warm)}")
    print(
        f"plain-only render:   {ms(checked)} with the encrypted-file check, {ms(unchecked)} without"
    )


if __name__ == "__main__":
    asyncio.run(main())
