"""Stages of a sync: the order in which the app's objects are applied.

Namespaces and CustomResourceDefinitions go first, in the lowest wave, so everything
else can be validated and applied into them; then each `gitops.dev/sync-wave` in
ascending order. A wave that another follows is waited for (its workloads healthy)
before the next one starts. Without wave annotations there are two stages, as in
Flux's `ApplyAllStaged`: definitions, then the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncer.planning import Planned, is_stage_zero


@dataclass(frozen=True)
class Stage:
    wave: int
    objects: list[Planned]
    """Every object of the stage, whether it needs a write or not."""
    definitions: bool = False
    """Namespaces and CRDs: the stage after it waits for them to be served."""
    wait: bool = False
    """The last stage of a wave that another wave follows: its wave must be healthy first."""


def stages(objects: list[Planned]) -> list[Stage]:
    """The app's objects in apply order."""
    if not objects:
        return []
    definitions = [p for p in objects if is_stage_zero(p.info)]
    rest = [p for p in objects if not is_stage_zero(p.info)]
    waves = sorted({p.wave for p in rest})
    lowest = min([*waves, *(p.wave for p in definitions)])
    found: list[Stage] = []
    if definitions:
        found.append(Stage(lowest, definitions, definitions=True))
    for index, wave in enumerate(waves):
        members = [p for p in rest if p.wave == wave]
        found.append(Stage(wave, members, wait=index < len(waves) - 1))
    return found


def wave_of_objects(found: list[Stage]) -> dict[tuple[str, str, str, str], int]:
    """The wave each object is applied in (Namespaces and CRDs: the lowest)."""
    return {p.key: stage.wave for stage in found for p in stage.objects}
