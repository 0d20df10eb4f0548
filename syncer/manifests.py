"""Render: turn the files of an app's directory into Kubernetes objects, safely.

Every `.yaml`/`.yml`/`.json` file, sorted by path, each document in file order, so the
same commit always renders the same list. Loading is defensive because a commit is
input from anyone with push rights:

* only the YAML 1.1 core types; custom tags (`!!python/object`, `!!binary`...) fail;
* timestamps stay strings (the API server would get a string from kubectl too);
* aliases are allowed, but the fully expanded size of a document is counted over shared
  nodes (linear in the parsed size) and bounded, so a "billion laughs" bomb fails fast
  with a clear message instead of exhausting memory when it is serialised;
* every error names the file, the document index and its line.

File size limits, symlinks and `..` paths are checked by the git cache that reads them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from syncer.errors import ManifestError
from syncer.jsoncodec import plain_json

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_EXPANDED_NODES = 1_000_000
"""Upper bound of scalars+collections one document may expand to through aliases."""

JsonObj = dict[str, Any]
if TYPE_CHECKING:  # the C loader has the same interface; stubs describe the Python one
    _BASE_LOADER = yaml.SafeLoader
else:
    _BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(_BASE_LOADER):
    """Safe loader without the implicit timestamp type (values stay strings)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}


def _refuse(loader: _Loader, node: yaml.Node) -> Any:
    return loader.construct_undefined(node)


for _tag in (
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:set",
    "tag:yaml.org,2002:omap",
    "tag:yaml.org,2002:pairs",
):
    _Loader.add_constructor(_tag, _refuse)


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object as Git declares it, with where it came from."""

    body: JsonObj
    source: str
    """`path/file.yaml#2 (line 14)`: enough for a user to find it."""

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        ns = self.body["metadata"].get("namespace")
        return str(ns) if ns else None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


def render(files: Mapping[str, bytes], *, max_nodes: int = MAX_EXPANDED_NODES) -> list[Manifest]:
    """Every object of the manifest files in `files`, in a stable order.

    Raises `ManifestError` naming the first broken file and document.
    """
    manifests: list[Manifest] = []
    for path in sorted(files):
        if not path.endswith(MANIFEST_SUFFIXES):
            continue
        for index, line, doc, plain in _documents(path, files[path]):
            where = f"{path}#{index} (line {line})"
            if doc is None:
                continue
            if not plain:
                _check_expansion(doc, where, max_nodes)
            manifests.extend(_objects(doc, where))
    _check_duplicates(manifests)
    return manifests


def _documents(path: str, data: bytes) -> list[tuple[int, int, object, bool]]:
    """(index, line, document, plain) per document; `plain` ones were built without
    aliases and with string keys only, so they need no expansion check."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.endswith(".json"):
        try:
            return [(0, 1, json.loads(text), False)]
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    # Without an anchor (`&`) there can be no alias: the composer refuses undefined ones.
    anchors = "&" in text
    docs: list[tuple[int, int, object, bool]] = []
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else 1
            doc: object = None
            plain = False
            if node is not None and not anchors:
                try:
                    doc, plain = _plain(loader, node, f"{path}#{index} (line {line})"), True
                except _NeedsConstructor:
                    pass
                finally:
                    _reset(loader)
            if not plain:
                doc = loader.construct_document(node)
            docs.append((index, line, doc, plain))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(f"{path}#{index}{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}#{index}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return docs


class _NeedsConstructor(Exception):
    """A document uses something only PyYAML's constructor handles (merge keys)."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node, where: str) -> object:
    """Build a document without aliases straight from its nodes.

    PyYAML's constructor spends most of a render in generic machinery (generators for
    recursive structures, per-node dispatch); for the strings, maps and lists that make
    up nearly all of a manifest this walk is ~3x cheaper. Other scalars (int, float,
    bool, null, and every tag we refuse) still go through the constructor, so the same
    values and the same errors come out.
    """
    tag = node.tag
    if tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    if tag == _MAP and isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _NeedsConstructor
            key = _plain(loader, key_node, where)
            if not isinstance(key, str):
                raise ManifestError(f"{where}: mapping key {key!r} is not a string")
            out[key] = _plain(loader, value_node, where)
        return out
    if tag == _SEQ and isinstance(node, yaml.SequenceNode):
        return [_plain(loader, item, where) for item in node.value]
    return loader.construct_object(node, deep=True)


def _reset(loader: yaml.SafeLoader) -> None:
    """Forget what `construct_object` memoised for the document just built."""
    loader.constructed_objects = {}
    loader.recursive_objects = {}
    loader.state_generators = []
    loader.deep_construct = False


def _check_expansion(doc: object, where: str, max_nodes: int) -> None:
    """Count the nodes `doc` expands to, sharing work across aliased (shared) nodes.

    Rejects recursive aliases and anything that would expand past `max_nodes`, and any
    value JSON cannot carry.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(value: object) -> int:
        if isinstance(value, str | int | float | bool) or value is None:
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ManifestError(f"{where}: recursive YAML alias")
        active.add(key)
        total = 1
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ManifestError(f"{where}: mapping key {k!r} is not a string")
                total += 1 + size(v)
                if total > max_nodes:
                    break
        elif isinstance(value, list):
            for item in value:
                total += size(item)
                if total > max_nodes:
                    break
        else:
            raise ManifestError(f"{where}: unsupported value of type {type(value).__name__}")
        active.discard(key)
        if total > max_nodes:
            raise ManifestError(
                f"{where}: document expands to more than {max_nodes:,} nodes through YAML "
                "aliases (a YAML bomb?); refusing to load it"
            )
        sizes[key] = total
        return total

    size(doc)


def _objects(doc: object, where: str) -> list[Manifest]:
    if not isinstance(doc, dict):
        raise ManifestError(
            f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}"
        )
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        found: list[Manifest] = []
        for i, item in enumerate(doc["items"]):
            found.extend(_objects(item, f"{where} items[{i}]"))
        return found
    missing = [
        field
        for field, value in (
            ("apiVersion", doc.get("apiVersion")),
            ("kind", kind),
            (
                "metadata.name",
                (doc.get("metadata") or {}).get("name")
                if isinstance(doc.get("metadata"), dict)
                else None,
            ),
        )
        if not isinstance(value, str) or not value
    ]
    if missing:
        raise ManifestError(f"{where}: object without {', '.join(missing)}")
    # Re-serialise to plain JSON values: aliased nodes become independent copies.
    body = plain_json(doc)
    return [Manifest(body=body, source=where)]


def _check_duplicates(manifests: list[Manifest]) -> None:
    seen: dict[tuple[str, str, str | None, str], str] = {}
    for m in manifests:
        key = (m.group, m.kind, m.namespace, m.name)
        if key in seen:
            raise ManifestError(
                f"{m.source}: {m.kind} {m.name} is declared twice (first at {seen[key]})"
            )
        seen[key] = m.source


class RenderCache:
    """The last few renders, by content: a resync of an unchanged commit skips YAML parsing.

    Keyed by a digest of every path and byte, so it can never serve a stale render; owned
    by one `DesiredState` (no module-level state) and called from worker threads, so its
    bookkeeping holds a lock (the parse itself runs outside it). Callers must not mutate
    the returned bodies.
    """

    def __init__(self, size: int = 64, *, max_nodes: int = MAX_EXPANDED_NODES) -> None:
        self._size = size
        self._max_nodes = max_nodes
        self._renders: OrderedDict[bytes, list[Manifest]] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, files: Mapping[str, bytes]) -> list[Manifest]:
        digest = hashlib.sha256()
        for path in sorted(files):
            if path.endswith(MANIFEST_SUFFIXES):
                data = files[path]
                digest.update(f"{path}\0{len(data)}\0".encode())
                digest.update(data)
        key = digest.digest()
        with self._lock:
            found = self._renders.get(key)
            if found is not None:
                self._renders.move_to_end(key)
                return list(found)
        manifests = render(files, max_nodes=self._max_nodes)
        with self._lock:
            self._renders[key] = manifests
            while len(self._renders) > self._size:
                self._renders.popitem(last=False)
        return list(manifests)
