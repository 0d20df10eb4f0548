"""Helm sources: render a chart from the commit with the real Helm SDK (Helm v4).

Values are composed the way `helm install -f a.yaml -f b.yaml --set ...` composes them:
the chart's defaults, then each of `value_files` (paths from the repository root, so one
chart can serve several apps from e.g. `envs/prod.yaml`), then the app's inline
`values`; maps merge key by key, anything else is replaced. The release is named after
the app and installed into the app's namespace.

A chart's `dependencies` must be vendored in its `charts/` directory (`helm dependency
build`, committed): fetching them would need the network and would not be pinned by the
commit, so a dependency that is not there is refused with a message that says so.

Output keeps what `helm install` would send to the cluster: the rendered templates and
the `crds/` files; `NOTES.txt`, empty templates and test hooks (`helm.sh/hook: test`,
run by `helm test`, never installed) are left out.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from syncer.sources.detect import CHART_FILE, app_prefix
from syncer.sources.errors import RenderError, SourceRefused
from syncer.sources.process import child_env, run
from syncer.sources.snapshot import safe_relative

MAX_VALUES_NODES = 1_000_000
"""Upper bound of nodes a values file may expand to through YAML aliases."""
_CHILD = Path(__file__).with_name("helmchild.py")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`: maps merge recursively, other values replace (Helm's rule)."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = value
    return merged


def _count_nodes(value: object, where: str) -> None:
    """Refuse alias bombs before the values are serialised (which would expand them)."""
    sizes: dict[int, int] = {}

    def size(node: object, depth: int) -> int:
        if depth > 200:
            raise RenderError(f"{where}: values nested too deeply (recursive alias?)")
        if not isinstance(node, dict | list):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_VALUES_NODES:
                raise RenderError(
                    f"{where}: values expand to more than {MAX_VALUES_NODES:,} nodes through "
                    "YAML aliases (a YAML bomb?); refusing them"
                )
        sizes[id(node)] = total
        return total

    size(value, 0)


def load_values_file(root: Path, name: str) -> dict[str, Any]:
    """One values file of the commit, parsed safely; must be a mapping (or empty)."""
    path = root.joinpath(*safe_relative(name).parts)
    if not path.is_file():
        raise RenderError(
            f"helm value file {name!r} is not in the commit (value_files are relative to "
            "the repository root)"
        )
    try:
        data = yaml.load(path.read_bytes(), Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise RenderError(f"helm value file {name!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RenderError(f"helm value file {name!r} must hold a mapping of values")
    _count_nodes(data, f"helm value file {name!r}")
    return data


def check_dependencies(chart_dir: Path, shown: str) -> None:
    """Refuse declared dependencies that are not vendored under `charts/`."""
    try:
        meta = yaml.load((chart_dir / CHART_FILE).read_bytes(), Loader=_LOADER)  # noqa: S506
    except (OSError, yaml.YAMLError):
        return  # Helm reports a missing or broken Chart.yaml in its own words.
    deps = meta.get("dependencies") if isinstance(meta, dict) else None
    for dep in deps if isinstance(deps, list) else []:
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            continue
        name, repository = dep["name"], str(dep.get("repository") or "")
        charts = chart_dir / "charts"
        vendored = (charts / name / CHART_FILE).is_file() or any(charts.glob(f"{name}-*.tgz"))
        if vendored:
            continue
        if repository and not repository.startswith("file://"):
            raise SourceRefused(
                f"{shown}/{CHART_FILE}: dependency {name!r} from {repository} is not vendored "
                "in charts/ and fetching it would need the network; run `helm dependency "
                "build` and commit the charts/ directory"
            )
        raise SourceRefused(
            f"{shown}/{CHART_FILE}: dependency {name!r} is not in charts/; run `helm "
            "dependency build` and commit the charts/ directory"
        )


def _is_test_hook(text: str) -> bool:
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError:
        return False  # the manifest loader reports it with file and line
    if not docs:
        return False
    for doc in docs:
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        notes = meta.get("annotations") if isinstance(meta, dict) else None
        hook = notes.get("helm.sh/hook") if isinstance(notes, dict) else None
        if not isinstance(hook, str) or "test" not in [h.strip() for h in hook.split(",")]:
            return False
    return True


def _virtual_name(chart: str, key: str) -> str:
    name = f"helm://{chart}/{key}"
    return name if name.endswith((".yaml", ".yml", ".json")) else f"{name}.yaml"


def _prepare(
    root: Path, chart_path: str, values: Mapping[str, Any], value_files: list[str]
) -> tuple[Path, str, dict[str, Any]]:
    shown = PurePosixPath(app_prefix(chart_path) or ".").as_posix()
    chart_dir = root / shown
    if not (chart_dir / CHART_FILE).is_file():
        raise RenderError(f"{shown}: not a Helm chart (no {CHART_FILE})")
    check_dependencies(chart_dir, shown)
    merged: dict[str, Any] = {}
    for name in value_files:
        merged = merge_values(merged, load_values_file(root, name))
    return chart_dir, shown, merge_values(merged, values)


async def render_helm(
    root: Path,
    chart_path: str,
    *,
    release_name: str,
    namespace: str,
    values: Mapping[str, Any] | None = None,
    value_files: list[str] | None = None,
    timeout: float = 60.0,
) -> dict[str, bytes]:
    """Render the chart at `chart_path` of the snapshot `root`: {virtual name: YAML}.

    Names look like `helm://<chart path>/templates/deploy.yaml`. Raises `SourceRefused`
    for dependencies that need the network, `RenderError` with Helm's own message.
    """
    chart_dir, shown, merged = await asyncio.to_thread(
        _prepare, root, chart_path, values or {}, value_files or []
    )
    request = {
        "chart": str(chart_dir),
        "values": merged,
        "name": release_name,
        "namespace": namespace,
    }
    finished = await run(
        [sys.executable, "-I", str(_CHILD)],
        what="helm template",
        timeout=timeout,
        cwd=root,
        env=child_env(root),
        stdin=json.dumps(request).encode(),
    )
    try:
        answer = json.loads(finished.stdout)
    except json.JSONDecodeError:
        detail = finished.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RenderError(
            f"helm template {shown} crashed (exit {finished.returncode}): {detail}"
        ) from None
    if "error" in answer:
        message = str(answer["message"]).replace(f"{chart_dir}/", "").replace(str(root), ".")
        raise RenderError(f"helm template {shown} failed: {message}")
    rendered: dict[str, bytes] = {}
    for key, text in sorted(answer["crds"].items()):
        if text.strip():
            rendered[_virtual_name(shown, f"crds/{PurePosixPath(key).name}")] = text.encode()
    for key, text in sorted(answer["manifests"].items()):
        relative = key.split("/", 1)[1] if "/" in key else key
        if PurePosixPath(key).name == "NOTES.txt" or not text.strip() or _is_test_hook(text):
            continue
        rendered[_virtual_name(shown, relative)] = text.encode()
    return rendered
