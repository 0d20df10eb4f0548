"""Field ownership: server-side apply and the ``managedFields`` of every write.

A field set is a set of paths; a path is a tuple of fieldsV1 path elements
(``f:spec``, ``k:{"name":"web"}`` for an item of a keyed list, ``v:"x"`` for a member of
a set list). ``managedFields`` stores one set per (manager, operation, subresource) in the
fieldsV1 tree form the real server uses, so clients that read it (kubectl, the syncer's
drift check) see the same shape. The rules follow the server-side apply docs
(kubernetes.io/docs/reference/using-api/server-side-apply/): conflicts only where another
manager owns a field *and* the value differs; ``force`` takes ownership; a field an
applier stops sending is removed unless someone else still owns it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devcluster.patching import SET_LISTS, item_key, merge_key
from devcluster.store import clone

JsonObj = dict[str, Any]
Path = tuple[str, ...]
FieldSet = set[Path]

_TRACKED_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")
_SKIP_TOP = frozenset({"apiVersion", "kind", "metadata", "status"})
_MISSING = object()


@dataclass(slots=True)
class Entry:
    """One ``managedFields`` entry, with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    fields: FieldSet
    source: JsonObj | None = None
    """The fieldsV1 tree it was read from: written back as is while ``fields`` is
    unchanged (stored objects are never mutated, so sharing it is safe), which spares
    re-encoding every other manager's entry on each write."""
    source_fields: frozenset[Path] | None = None

    def to_json(self) -> JsonObj:
        unchanged = self.source_fields is not None and self.fields == self.source_fields
        out: JsonObj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.source
            if unchanged and self.source is not None
            else to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _key_text(keys: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return "k:" + json.dumps(dict(zip(keys, values, strict=True)), separators=(",", ":"))


def _walk(value: Any, path: Path, field: str, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _walk(child, (*path, f"f:{key}"), key, out)
        return
    if isinstance(value, list) and value:
        if field in SET_LISTS:
            for member in value:
                out.setdefault((*path, "v:" + json.dumps(member, separators=(",", ":"))), member)
            return
        keys = merge_key(field, value)
        if keys is not None and all(isinstance(i, dict) for i in value):
            for item in value:
                ident = item_key(item, keys)
                assert ident is not None  # noqa: S101 - every item is a dict here
                item_path = (*path, _key_text(keys, ident))
                out.setdefault(item_path, item)  # a repeated key: a path finds the first
                for key, child in item.items():
                    _walk(child, (*item_path, f"f:{key}"), key, out)
            return
    out.setdefault(path, value)


def values_of(obj: JsonObj, subresource: str = "") -> dict[Path, Any]:
    """Every path of :func:`fields_of` with the value found there (what ``value_at``
    would return), from one walk: comparing two versions this way costs a path lookup
    per field instead of a walk from the root."""
    out: dict[Path, Any] = {}
    if subresource == "status":
        if "status" in obj:
            _walk(obj["status"], ("f:status",), "status", out)
        return out
    for key, value in obj.items():
        if key not in _SKIP_TOP:
            _walk(value, (f"f:{key}",), key, out)
    metadata = obj.get("metadata") or {}
    for key in _TRACKED_METADATA:
        if key in metadata:
            _walk(metadata[key], ("f:metadata", f"f:{key}"), key, out)
    return out


def fields_of(obj: JsonObj, subresource: str = "") -> FieldSet:
    """The field set an object (or its ``status``) makes, as apply or update would own it."""
    return set(values_of(obj, subresource))


def to_fields_v1(fields: Iterable[Path]) -> JsonObj:
    """Encode a field set as the fieldsV1 tree (``.`` marks a node that is itself owned)."""
    root: JsonObj = {}
    for path in sorted(fields):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return _mark_dots(root, set(fields))


def _mark_dots(tree: JsonObj, fields: set[Path], prefix: Path = ()) -> JsonObj:
    out: JsonObj = {}
    for key, child in tree.items():
        if key == ".":
            continue
        path = (*prefix, key)
        sub = _mark_dots(child, fields, path)
        if sub and path in fields:
            sub = {".": {}, **sub}
        out[key] = sub
    return out


def from_fields_v1(tree: JsonObj, prefix: Path = ()) -> FieldSet:
    """Decode a fieldsV1 tree back into a field set."""
    out: FieldSet = set()
    for key, child in tree.items():
        if key == ".":
            out.add(prefix)
            continue
        path = (*prefix, key)
        if child:
            out |= from_fields_v1(child, path)
        else:
            out.add(path)
    return out


def read_entries(obj: JsonObj) -> list[Entry]:
    entries = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or "manager" not in raw:
            continue
        tree = raw.get("fieldsV1") or {}
        fields = from_fields_v1(tree)
        entries.append(
            Entry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                time=raw.get("time", ""),
                subresource=raw.get("subresource", ""),
                fields=fields,
                source=tree,
                source_fields=frozenset(fields),
            )
        )
    return entries


def write_entries(obj: JsonObj, entries: list[Entry]) -> None:
    kept = [e.to_json() for e in entries if e.fields]
    metadata = obj.setdefault("metadata", {})
    if kept:
        metadata["managedFields"] = kept
    else:
        metadata.pop("managedFields", None)


@functools.lru_cache(maxsize=8192)
def _element_value(text: str) -> Any:
    """The JSON of a `k:`/`v:` path element; cached, as the same few keys recur on every
    write of an object. Callers only compare the result, never change it."""
    return json.loads(text)


def _step(node: Any, element: str) -> Any:
    kind, _, text = element.partition(":")
    if kind == "f":
        return node.get(text, _MISSING) if isinstance(node, dict) else _MISSING
    if not isinstance(node, list):
        return _MISSING
    target = _element_value(text)
    if kind == "v":
        return target if target in node else _MISSING
    for item in node:
        if isinstance(item, dict) and _item_matches(item, target):
            return item
    return _MISSING


def _item_matches(item: JsonObj, target: JsonObj) -> bool:
    for key, value in target.items():
        have = item.get(key)
        if have is None and key == "protocol":
            have = "TCP"
        if have != value:
            return False
    return True


def value_at(obj: Any, path: Path) -> Any:
    """The value at a path, or the module's missing sentinel."""
    node = obj
    for element in path:
        node = _step(node, element)
        if node is _MISSING:
            return _MISSING
    return node


def remove_at(obj: Any, path: Path) -> None:
    """Delete the field, keyed item or set member at ``path`` if it exists."""
    parent = value_at(obj, path[:-1])
    if parent is _MISSING:
        return
    kind, _, text = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(text, None)
    elif kind == "v" and isinstance(parent, list):
        target = _element_value(text)
        parent[:] = [v for v in parent if v != target]
    elif kind == "k" and isinstance(parent, list):
        target = _element_value(text)
        parent[:] = [i for i in parent if not (isinstance(i, dict) and _item_matches(i, target))]


def merge_applied(live: Any, applied: Any, field: str = "") -> Any:
    """Merge an applied configuration into the live object: maps and keyed lists merge,
    set lists union, everything else (scalars, atomic lists) is replaced.

    Neither input is changed: maps and lists on a merged path are new, the rest is shared
    with `live` (stored objects are never mutated) or taken from `applied`, which the
    caller hands over."""
    if isinstance(applied, dict) and isinstance(live, dict):
        result = dict(live)
        for key, value in applied.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge_applied(live.get(key, _MISSING), value, key)
        return result
    if isinstance(applied, list) and isinstance(live, list):
        if field in SET_LISTS:
            return list(live) + [v for v in applied if v not in live]
        keys = merge_key(field, applied) or merge_key(field, live)
        if keys is not None:
            merged = list(live)
            index = {item_key(i, keys): n for n, i in enumerate(merged)}
            for item in applied:
                ident = item_key(item, keys)
                if ident in index:
                    merged[index[ident]] = merge_applied(merged[index[ident]], item, "")
                else:
                    index[ident] = len(merged)
                    merged.append(item)
            return merged
    return applied


@dataclass(frozen=True, slots=True)
class Conflict:
    manager: str
    api_version: str
    path: Path
    operation: str = "Apply"
    subresource: str = ""

    def owner(self) -> str:
        """The owning manager as kube-apiserver prints it: ``"gitops"`` for an applier,
        ``"kubectl" with subresource "scale" using apps/v1`` for an updater."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def owner_key(self) -> str:
        """The manager's identifier (kube-apiserver's sort key for conflict messages)."""
        key = {"manager": self.manager, "operation": self.operation}
        key["apiVersion"] = self.api_version
        if self.subresource:
            key["subresource"] = self.subresource
        return json.dumps(key, separators=(",", ":"))


def dotted(path: Path) -> str:
    """A path in the ``.spec.replicas`` / ``.spec.containers[name="web"].image`` form of
    the apiserver's conflict messages."""
    out = ""
    for element in path:
        kind, _, text = element.partition(":")
        if kind == "f":
            out += f".{text}"
        elif kind == "k":
            pairs = ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(text).items())
            out += f"[{pairs}]"
        else:
            out += f"[={text}]"
    return out


def apply(
    live: JsonObj | None,
    applied: JsonObj,
    *,
    manager: str,
    force: bool,
    now: str,
    subresource: str = "",
) -> tuple[JsonObj, list[Conflict]]:
    """Server-side apply ``applied`` onto ``live`` for ``manager``.

    Returns the merged object (with updated managedFields) and the conflicts. When there
    are conflicts and ``force`` is false the object is returned unchanged: the caller
    answers 409 listing them. ``applied`` becomes part of the result: the caller passes
    its own copy. ``live`` is never changed.
    """
    base: JsonObj = live if live is not None else {}
    entries = read_entries(base)
    new_set = fields_of(applied, subresource)
    mine = next(
        (
            e
            for e in entries
            if e.manager == manager and e.operation == "Apply" and e.subresource == subresource
        ),
        None,
    )
    # Every other manager, whatever subresource it wrote through: `kubectl scale` owns
    # spec.replicas through /scale, and a main-resource apply conflicts with it.
    others = [e for e in entries if e is not mine]

    conflicts = []
    for path in sorted(new_set):
        if path[-1].startswith("k:"):
            continue
        for entry in others:
            if path in entry.fields and value_at(base, path) != value_at(applied, path):
                conflicts.append(
                    Conflict(
                        entry.manager, entry.api_version, path, entry.operation, entry.subresource
                    )
                )
    if conflicts and not force:
        return base, conflicts
    for conflict in conflicts:
        for entry in others:
            if entry.manager == conflict.manager:
                entry.fields.discard(conflict.path)

    previous = mine.fields if mine is not None else set()
    owned_by_others: set[Path] = set()
    for entry in others:
        for path in entry.fields:
            owned_by_others.update(path[:n] for n in range(1, len(path) + 1))
    doomed = {p for p in previous - new_set if p not in owned_by_others}
    if doomed:
        base = clone(base)  # removals change it in place
    for path in sorted(doomed, key=len, reverse=True):
        # A whole keyed item goes at once: removing its key fields first would lose it.
        if not any(path[:n] in doomed for n in range(1, len(path))):
            remove_at(base, path)

    merged = merge_applied(base, _strip_server_fields(applied))
    api_version = str(applied.get("apiVersion", ""))
    if mine is None:
        mine = Entry(manager, "Apply", api_version, now, subresource, set())
        entries.append(mine)
    if mine.fields != new_set or mine.api_version != api_version:
        mine.time = now
    mine.fields = new_set
    mine.api_version = api_version
    for entry in others:
        if entry.fields != (entry.source_fields or set()):
            entry.time = now
    write_entries(merged, entries)
    return merged, []


def _strip_server_fields(applied: JsonObj) -> JsonObj:
    out = dict(applied)
    metadata = dict(out.get("metadata") or {})
    for key in (
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ):
        metadata.pop(key, None)
    out["metadata"] = metadata
    return out


def record_update(
    old: JsonObj | None,
    new: JsonObj,
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
) -> None:
    """Maintain managedFields for a non-apply write (create, PUT, merge/JSON patch):
    the writer takes every field it changed, removed fields leave every set."""
    entries = read_entries(old or {})
    old_values = values_of(old or {}, subresource)
    new_values = values_of(new, subresource)
    changed = {p for p, v in new_values.items() if p not in old_values or old_values[p] != v}
    removed = old_values.keys() - new_values.keys()
    if not changed and not removed:
        write_entries(new, entries)
        return
    mine = None
    for entry in entries:  # a write through /scale takes spec.replicas from its appliers
        if (entry.manager, entry.operation, entry.subresource) == (manager, "Update", subresource):
            mine = entry
            continue
        before = len(entry.fields)
        entry.fields -= changed
        entry.fields -= removed
        if len(entry.fields) != before:
            entry.time = now
    if mine is None:
        mine = Entry(manager, "Update", api_version, now, subresource, set())
        entries.append(mine)
    mine.fields = (mine.fields | changed) - removed
    mine.time = now
    mine.api_version = api_version
    write_entries(new, entries)
