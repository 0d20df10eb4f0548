"""Patch formats: JSON merge patch, strategic merge patch and JSON patch.

Strategic merge patch needs to know which lists merge by key; the real server reads the
``patchMergeKey`` struct tags of the Go types. :func:`merge_key` is that table for the
list fields a GitOps repository touches, keyed by field name and decided by the item
shape where one name means different lists (container ports vs service ports). Server-side
apply uses the same table for its ``listType=map`` lists.
"""

from __future__ import annotations

from typing import Any

from devcluster.status import ApiError, bad_request
from devcluster.store import clone

JsonObj = dict[str, Any]

# field name → key fields of its items (the `patchMergeKey`/`listMapKeys` of the Go types).
_MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "resourceClaims": ("name",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
# Lists of scalars merged as sets (`patchStrategy:"merge"` on []string).
SET_LISTS = frozenset({"finalizers"})


def merge_key(field: str, items: list[Any]) -> tuple[str, ...] | None:
    """Key fields of the list stored under ``field``, or None for an atomic list."""
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), None)
        if sample is None:
            return None
        if "containerPort" in sample:
            return ("containerPort", "protocol")
        if "port" in sample:
            return ("port", "protocol")
        return None
    return _MERGE_KEYS.get(field)


def item_key(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The identity of a keyed list item; ``protocol`` defaults to TCP as the server does."""
    if not isinstance(item, dict):
        return None
    out: list[Any] = []
    for k in keys:
        value = item.get(k)
        if value is None and k == "protocol":
            value = "TCP"
        out.append(value)
    return tuple(out)


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result: JsonObj = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes strategic merge patch for the lists in :data:`_MERGE_KEYS`.

    Supported directives: ``null`` deletes a key, ``$patch: replace`` on a map,
    ``$patch: delete`` on a keyed list item; ``$setElementOrder``/``$retainKeys`` are
    accepted and ignored (ordering is kept from the live object).
    """
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: clone(v) for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result: JsonObj = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith("$setElementOrder/") or key == "$retainKeys":
                continue
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                current = result.get(name)
                if isinstance(current, list) and isinstance(value, list):
                    result[name] = [v for v in current if v not in value]
                continue
            if value is None:
                result.pop(key, None)
                continue
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        return result
    if isinstance(patch, list):
        return _merge_list(target, patch, field)
    return clone(patch)


def _merge_list(target: Any, patch: list[Any], field: str) -> list[Any]:
    live: list[Any] = list(target) if isinstance(target, list) else []
    if field in SET_LISTS:
        return live + [clone(v) for v in patch if v not in live]
    keys = merge_key(field, patch) or merge_key(field, live)
    if keys is None:
        return [clone(v) for v in patch]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    index = {item_key(item, keys): pos for pos, item in enumerate(live)}
    deleted: set[Any] = set()
    for item in patch:
        key = item_key(item, keys)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            deleted.add(key)
            continue
        if key in index:
            live[index[key]] = strategic_merge_patch(live[index[key]], item, "")
        else:
            index[key] = len(live)
            live.append(clone(item))
    return [i for i in live if item_key(i, keys) not in deleted]


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(part)
    return node


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = clone(target)
    for op in operations:
        try:
            doc = _apply_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
            ) from exc
    return doc


def _apply_op(doc: Any, op: Any) -> Any:
    kind = op["op"]
    parts = _pointer(op["path"])
    if kind == "test":
        if _get(doc, parts) != op["value"]:
            raise ValueError(f"test failed at {op['path']}")
        return doc
    if kind in ("move", "copy"):
        value = clone(_get(doc, _pointer(op["from"])))
        if kind == "move":
            doc = _remove(doc, _pointer(op["from"]))
        return _add(doc, parts, value)
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "add":
        return _add(doc, parts, clone(op["value"]))
    if kind == "replace":
        _get(doc, parts)
        doc = _remove(doc, parts)
        return _add(doc, parts, clone(op["value"]))
    raise ValueError(f"unknown op {kind!r}")


def _get(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc
