"""Stages of a sync: the order in which an app's objects and hooks are applied.

1. the Namespaces the commit declares (hooks and everything else run in them);
2. pre-sync hooks, each waited for (a Job until it completes);
3. the CustomResourceDefinitions, waited for until they serve their kinds;
4. each `gitops.dev/sync-wave` in ascending order, a wave's workloads healthy before the
   next wave starts (Namespaces and CRDs count in the lowest wave);

then pruning, the app's health, and post-sync hooks (sync-failed hooks when it fails).
Without annotations this is Flux's `ApplyAllStaged`: definitions, then the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from syncer.engine import is_crd
from syncer.planning import Planned, is_stage_zero

StageKind = Literal["namespaces", "hooks", "definitions", "wave"]


@dataclass(frozen=True)
class Stage:
    kind: StageKind
    wave: int
    objects: list[Planned]
    """Every object of the stage, whether it needs a write or not."""
    wait: bool = False
    """The last stage of a wave that another wave follows: its wave must be healthy first."""


def stages(objects: list[Planned], pre_sync: list[Planned]) -> list[Stage]:
    """The app's objects and its pre-sync hooks in apply order."""
    namespaces = [p for p in objects if is_stage_zero(p.info) and not is_crd(p)]
    crds = [p for p in objects if is_crd(p)]
    rest = [p for p in objects if not is_stage_zero(p.info)]
    waves = sorted({p.wave for p in rest})
    lowest = min([*waves, *(p.wave for p in namespaces + crds)], default=0)
    found: list[Stage] = []
    if namespaces:
        found.append(Stage("namespaces", lowest, namespaces))
    if pre_sync:
        found.append(Stage("hooks", lowest, pre_sync))
    if crds:
        found.append(Stage("definitions", lowest, crds))
    for index, wave in enumerate(waves):
        members = [p for p in rest if p.wave == wave]
        found.append(Stage("wave", wave, members, wait=index < len(waves) - 1))
    return found
