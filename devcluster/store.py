"""Object storage, the cluster-wide resourceVersion and the watch event history.

Stored objects are never mutated after they are put: every write builds a new dict, so
a reader can keep a reference (and its pre-encoded JSON bytes) without copying. That is
what keeps GET and LIST cheap: the body is encoded once per write, not once per read.
Every write takes the next value of one monotonic counter as its resourceVersion, as etcd
revisions do, and appends an event to a bounded history that watches replay from.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson

from devcluster.status import gone

JsonObj = dict[str, Any]
ResourceKey = tuple[str, str]  # (group, plural): shared by every served version
ObjectKey = tuple[str, str]  # (namespace or "", name)
_T = TypeVar("_T")


def clone(value: _T) -> _T:
    """A private copy of a JSON value (dicts and lists copied, scalars shared).

    Writers copy stored objects before changing them; ``copy.deepcopy`` does the same
    with a memo and per-type dispatch that cost several times more, and JSON documents
    have no cycles or shared children worth its bookkeeping.
    """
    if type(value) is dict:
        return cast(_T, {k: clone(v) for k, v in cast(dict[Any, Any], value).items()})
    if type(value) is list:
        return cast(_T, [clone(v) for v in cast(list[Any], value)])
    return value


def encode(obj: Any) -> bytes:
    """The one JSON encoding used for every response body (orjson: compact UTF-8, the
    same bytes `json.dumps` gives with compact separators and no ASCII escaping)."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits: the standard library takes those
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Stored:
    """An object as stored, with its encoded form."""

    obj: JsonObj
    raw: bytes

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass(frozen=True, slots=True)
class Event:
    """One change: ``type`` is ADDED, MODIFIED or DELETED; ``old`` is the object before."""

    rv: int
    type: str
    resource: ResourceKey
    current: Stored
    old: JsonObj | None


class Store:
    """All objects of one emulated cluster."""

    def __init__(self, history: int = 10_000) -> None:
        self._objects: dict[ResourceKey, dict[ObjectKey, Stored]] = {}
        self._rv = 100
        self._history: deque[Event] = deque(maxlen=max(history, 1))
        self._subscribers: set[asyncio.Queue[Event]] = set()

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out."""
        return self._rv

    def get(self, resource: ResourceKey, namespace: str, name: str) -> Stored | None:
        bucket = self._objects.get(resource)
        return bucket.get((namespace, name)) if bucket else None

    def objects(self, resource: ResourceKey, namespace: str | None) -> list[Stored]:
        """Objects of a resource (in one namespace, or all), ordered by namespace and name
        as the real server's etcd key order gives them."""
        bucket = self._objects.get(resource) or {}
        if namespace is None:
            return [bucket[k] for k in sorted(bucket)]
        return [bucket[k] for k in sorted(bucket) if k[0] == namespace]

    def count(self, resource: ResourceKey) -> int:
        return len(self._objects.get(resource) or {})

    def put(self, resource: ResourceKey, obj: JsonObj, old: JsonObj | None) -> Stored:
        """Store ``obj`` (taking ownership of it) under the next resourceVersion."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        stored = Stored(obj, encode(obj))
        bucket = self._objects.setdefault(resource, {})
        bucket[(stored.namespace, stored.name)] = stored
        self._record(Event(self._rv, "MODIFIED" if old else "ADDED", resource, stored, old))
        return stored

    def remove(self, resource: ResourceKey, obj: JsonObj) -> Stored:
        """Delete an object; the DELETED event carries it at a fresh resourceVersion."""
        self._rv += 1
        final = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
        stored = Stored(final, encode(final))
        bucket = self._objects.get(resource) or {}
        bucket.pop((stored.namespace, stored.name), None)
        self._record(Event(self._rv, "DELETED", resource, stored, obj))
        return stored

    def drop_resource(self, resource: ResourceKey) -> list[Stored]:
        """Remove every object of a resource (its CRD is gone), emitting DELETED events."""
        victims = self.objects(resource, None)
        return [self.remove(resource, s.obj) for s in victims]

    def _record(self, event: Event) -> None:
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue that receives every future event until :meth:`unsubscribe`."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(queue)

    def events_since(self, rv: int, resource: ResourceKey) -> list[Event]:
        """Events of ``resource`` newer than ``rv``; 410 Gone when the history no longer
        reaches back that far (the watch must re-list)."""
        if rv < self._rv and (not self._history or self._history[0].rv > rv + 1):
            raise gone(f"too old resource version: {rv} ({self._oldest()})")
        return [e for e in self._history if e.rv > rv and e.resource == resource]

    def _oldest(self) -> int:
        return self._history[0].rv - 1 if self._history else self._rv
