"""Build the real parts from their registries: Go binaries from the Go module proxy, Kafka's
jars from Maven Central.

Each part gets a wrapper project written from `versions.py` (a `go.mod` with `tool` lines,
or a `pom.xml`) and is built with the ordinary client (`go build`, `mvn`). Nothing is
downloaded from anywhere else, and none of those projects' code is kept in our tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed import versions
from testbed.cache import building, cache_root


class BuildError(RuntimeError):
    """A part could not be built; the message names the part and the command's last lines."""


def say(message: str) -> None:
    print(f"testbed: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class GoPart:
    """Go main packages built from one module at one version."""

    name: str
    module: str
    version: str
    binaries: dict[str, str]
    """Binary name -> main package path."""
    ldflags: tuple[str, ...] = ()
    replaces: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    """Data files the module publishes beside its code (paths inside the module), kept too."""

    def folder(self) -> Path:
        go = _go_version()
        return cache_root() / f"{self.name}-{self.version}-{go}"

    def built(self) -> bool:
        bin_dir = self.folder() / "bin"
        return all((bin_dir / name).is_file() for name in self.binaries) and all(
            self.file(path).is_file() for path in self.files
        )

    def file(self, path: str) -> Path:
        return self.folder() / "files" / Path(path).name

    def binary(self, name: str) -> Path:
        return self.folder() / "bin" / name


@dataclass(frozen=True)
class MavenPart:
    """A Java application's runtime class path, resolved by Maven."""

    name: str
    version: str
    dependencies: tuple[tuple[str, str, str], ...]
    """(groupId, artifactId, version) of each direct dependency."""

    def folder(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"

    def built(self) -> bool:
        libs = self.folder() / "libs"
        return libs.is_dir() and any(libs.glob("*.jar"))

    def classpath(self) -> str:
        return str(self.folder() / "libs" / "*")


def kubernetes() -> GoPart:
    version_pkg = "k8s.io/component-base/version"
    major, minor = versions.KUBERNETES.lstrip("v").split(".")[:2]
    return GoPart(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=versions.KUBERNETES,
        binaries={
            name: f"k8s.io/kubernetes/cmd/{name}"
            for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        },
        ldflags=(
            f"-X {version_pkg}.gitVersion={versions.KUBERNETES}",
            f"-X {version_pkg}.gitMajor={major}",
            f"-X {version_pkg}.gitMinor={minor}",
            f"-X {version_pkg}.gitTreeState=clean",
        ),
    )


def etcd() -> GoPart:
    return GoPart(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=versions.ETCD,
        binaries={"etcd": "go.etcd.io/etcd/server/v3"},
    )


def kwok() -> GoPart:
    return GoPart(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version=versions.KWOK,
        binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        # kwok's own "fast" stage set: nodes turn Ready, keep a lease; Pods run, complete,
        # and go away when deleted.
        files=tuple(
            f"kustomize/stage/{stage}.yaml"
            for stage in (
                "node/fast/node-initialize",
                "node/heartbeat-with-lease/node-heartbeat-with-lease",
                "pod/fast/pod-ready",
                "pod/fast/pod-complete",
                "pod/fast/pod-delete",
            )
        ),
    )


def sops() -> GoPart:
    return GoPart(
        name="sops",
        module="github.com/getsops/sops/v3",
        version=versions.SOPS,
        binaries={"sops": "github.com/getsops/sops/v3/cmd/sops"},
    )


def age() -> GoPart:
    return GoPart(
        name="age",
        module="filippo.io/age",
        version=versions.AGE,
        binaries={name: f"filippo.io/age/cmd/{name}" for name in ("age", "age-keygen")},
    )


def tools() -> tuple[GoPart, ...]:
    """Command-line tools the tests drive beside the bed's servers (nothing runs them)."""
    return (sops(), age())


def kafka() -> MavenPart:
    return MavenPart(
        name="kafka",
        version=versions.KAFKA,
        dependencies=(
            ("org.apache.kafka", "kafka_2.13", versions.KAFKA),
            ("org.slf4j", "slf4j-api", versions.SLF4J),
            ("org.apache.logging.log4j", "log4j-core", versions.LOG4J),
            ("org.apache.logging.log4j", "log4j-slf4j2-impl", versions.LOG4J),
        ),
    )


# ------------------------------------------------------------------------------ Go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false", CGO_ENABLED="0")
    return env


def _go_version() -> str:
    out = _run(["go", "env", "GOVERSION"], cwd=None, env=_go_env(), what="go env").strip()
    return out or "go"


def build_go(part: GoPart) -> None:
    """Write the wrapper module, resolve it, and build its binaries into the cache."""
    if part.built():
        return
    started = time.monotonic()
    say(f"building {part.name} {part.version} ({', '.join(part.binaries)}) with go build")
    with building(part.folder()) as scratch:
        src = scratch / "src"
        src.mkdir()
        (src / "go.mod").write_text(f"module gitops-pipeline/testbed/{part.name}\n\ngo 1.26.0\n")
        env = _go_env()
        replaces = dict(part.replaces)
        if part.module == "k8s.io/kubernetes":
            replaces.update(_staging_replaces(src, env))
        _write_go_mod(src, part, replaces)
        _run(
            ["go", "get", "-tool", *(f"{pkg}@{part.version}" for pkg in part.binaries.values())],
            cwd=src,
            env=env,
            what=f"go get ({part.name})",
        )
        _run(["go", "mod", "tidy"], cwd=src, env=env, what=f"go mod tidy ({part.name})")
        bin_dir = scratch / "bin"
        bin_dir.mkdir()
        ldflags = " ".join(("-s", "-w", *part.ldflags))
        if len(part.binaries) > 1 and all(
            pkg.rsplit("/", 1)[1] == name for name, pkg in part.binaries.items()
        ):
            targets: Sequence[tuple[str, list[str]]] = [
                (str(bin_dir) + "/", list(part.binaries.values()))
            ]
        else:
            targets = [(str(bin_dir / name), [pkg]) for name, pkg in part.binaries.items()]
        for output, packages in targets:
            _go_build(src, env, output, packages, ldflags, part.name)
        if part.files:
            module_dir = Path(
                _run(
                    ["go", "list", "-m", "-f", "{{.Dir}}", part.module],
                    cwd=src,
                    env=env,
                    what=f"go list ({part.name})",
                ).strip()
            )
            (scratch / "files").mkdir()
            for path in part.files:
                shutil.copyfile(module_dir / path, scratch / "files" / Path(path).name)
    say(f"built {part.name} in {time.monotonic() - started:.0f} s")


def _staging_replaces(src: Path, env: dict[str, str]) -> dict[str, str]:
    """Map every staging module of the release to its published version.

    The list comes from the release's own `go.mod`, whose `replace` block points each
    staging module at `./staging/src/...`, a path that only exists in its repository.
    """
    info = json.loads(
        _run(
            ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{versions.KUBERNETES}"],
            cwd=src,
            env=env,
            what="go mod download k8s.io/kubernetes",
        )
    )
    text = Path(info["GoMod"]).read_text()
    staged = re.findall(r"^\s*(k8s\.io/[\w.\-/]+)\s*=>\s*\./staging/", text, re.MULTILINE)
    if not staged:
        raise BuildError(f"no staging modules found in {info['GoMod']}")
    return {module: f"{module} {versions.KUBERNETES_STAGING}" for module in staged}


def _write_go_mod(src: Path, part: GoPart, replaces: dict[str, str]) -> None:
    lines = [
        f"module gitops-pipeline/testbed/{part.name}",
        "",
        "go 1.26.0",
        "",
        f"require {part.module} {part.version}",
    ]
    if replaces:
        lines += ["", "replace ("]
        lines += [f"\t{old} => {new}" for old, new in sorted(replaces.items())]
        lines.append(")")
    (src / "go.mod").write_text("\n".join(lines) + "\n")


def _go_build(
    src: Path, env: dict[str, str], output: str, packages: list[str], ldflags: str, name: str
) -> None:
    """`go build -v`, with a progress line per hundred packages compiled."""
    argv = ["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", output, *packages]
    process = subprocess.Popen(
        argv, cwd=src, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    tail: list[str] = []
    for compiled, line in enumerate(process.stdout or (), start=1):
        tail = [*tail[-19:], line.rstrip()]
        if compiled % 100 == 0:
            say(f"  {name}: {compiled} packages compiled")
    if process.wait() != 0:
        raise BuildError(f"go build of {name} failed:\n" + "\n".join(tail))


# --------------------------------------------------------------------------- Maven


def build_maven(part: MavenPart) -> None:
    """Write the wrapper `pom.xml` and copy the runtime class path into the cache."""
    if part.built():
        return
    started = time.monotonic()
    say(f"resolving {part.name} {part.version} from Maven Central")
    with building(part.folder()) as scratch:
        (scratch / "pom.xml").write_text(_pom(part))
        _run(
            [
                "mvn",
                "-B",
                "-q",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={scratch / 'libs'}",
                "-DincludeScope=runtime",
            ],
            cwd=scratch,
            env=dict(os.environ),
            what=f"mvn ({part.name})",
        )
        _drop_old_slf4j(scratch / "libs")
    say(f"resolved {part.name} in {time.monotonic() - started:.0f} s")


def _pom(part: MavenPart) -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in part.dependencies
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gitops-pipeline.testbed</groupId>
  <artifactId>{part.name}</artifactId>
  <version>{part.version}</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def _drop_old_slf4j(libs: Path) -> None:
    """Keep one slf4j-api: Maven's nearest-wins already picks ours, this is a guard."""
    apis = sorted(libs.glob("slf4j-api-*.jar"))
    for jar in apis:
        if not jar.name.startswith(f"slf4j-api-{versions.SLF4J}"):
            jar.unlink()


# ------------------------------------------------------------------------- helpers


def _run(argv: list[str], *, cwd: Path | None, env: dict[str, str], what: str) -> str:
    if shutil.which(argv[0]) is None:
        raise BuildError(f"{what}: `{argv[0]}` is not on PATH; the test bed builds with it")
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def build_all(only: str | None = None) -> None:
    """Build what `only` (kube, kafka or None for both, plus the tools) needs and is not
    cached yet."""
    if only in (None, "kube"):
        for part in (etcd(), kubernetes(), kwok()):
            build_go(part)
    if only is None:
        for part in tools():
            build_go(part)
    if only in (None, "kafka"):
        build_maven(kafka())
