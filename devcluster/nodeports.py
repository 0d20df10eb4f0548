"""Node ports: the one allocator kube-apiserver runs that clients see at once.

A Service of type NodePort or LoadBalancer holds one cluster-wide port per service port,
from 30000-32767: a port given in the spec must be free (else 422 "provided port is already
allocated"), a missing one is picked, and an update that leaves it out keeps the old one
(matched by port and protocol), as the real service registry does. Cluster IPs stay
derived from the name (see :mod:`devcluster.defaults`): nobody asks for them by number.
"""

from __future__ import annotations

import random
from typing import Any

from devcluster import status
from devcluster.store import Store

JsonObj = dict[str, Any]
RANGE = range(30000, 32768)
_TYPES = frozenset({"NodePort", "LoadBalancer"})


def _ports(obj: JsonObj | None) -> list[JsonObj]:
    spec = (obj or {}).get("spec") or {}
    if spec.get("type") not in _TYPES:
        return []
    return [p for p in spec.get("ports") or [] if isinstance(p, dict)]


def allocate(store: Store, new: JsonObj, old: JsonObj | None) -> None:
    """Fill and check ``new``'s node ports in place (``old``: the live Service, if any)."""
    ports = _ports(new)
    if not ports:
        return
    metadata = new["metadata"]
    me = (metadata.get("namespace", ""), metadata.get("name", ""))
    taken: set[int] = set()
    for stored in store.objects(("", "services"), None):
        if (stored.namespace, stored.name) != me:
            taken.update(int(p["nodePort"]) for p in _ports(stored.obj) if p.get("nodePort"))
    kept = {(p.get("port"), p.get("protocol", "TCP")): p["nodePort"] for p in _ports(old)}
    for index, port in enumerate(ports):
        if not port.get("nodePort"):
            previous = kept.get((port.get("port"), port.get("protocol", "TCP")))
            if previous:
                port["nodePort"] = previous
        wanted = port.get("nodePort")
        if wanted:
            if int(wanted) in taken:
                raise status.invalid(
                    "",
                    "Service",
                    metadata.get("name", ""),
                    [
                        (
                            f"spec.ports[{index}].nodePort",
                            "FieldValueInvalid",
                            f"Invalid value: {wanted}: provided port is already allocated",
                        )
                    ],
                )
        else:
            free = [n for n in RANGE if n not in taken]
            port["nodePort"] = random.choice(free)  # noqa: S311 - not for security
        taken.add(int(port["nodePort"]))
