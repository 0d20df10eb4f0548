"""Dependencies between apps (`depends_on`): every name known, no cycle.

A dependency says "apply me only once that app is synced and healthy at its branch
head"; a cycle would make every app in it wait for the others forever, so it is refused
when the configuration is loaded rather than discovered as a stall at run time. The
check takes the whole app list as plain names, so apps generated at run time (app sets)
are checked by the same function as the ones in the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DependencyProblem:
    """An unknown dependency or a cycle, attributed to the app whose entry starts it."""

    app: str
    """The app whose `depends_on` names the unknown app or starts the cycle."""
    index: int
    """Position in that app's `depends_on` list of the offending entry."""
    message: str


def dependency_problems(depends_on: Mapping[str, Sequence[str]]) -> list[DependencyProblem]:
    """Every unknown name and every cycle in `depends_on` (app → the apps it waits for).

    Each cycle is reported once, from its alphabetically first app, as `a -> b -> a`.
    """
    problems: list[DependencyProblem] = []
    for app in sorted(depends_on):
        for index, dep in enumerate(depends_on[app]):
            if dep not in depends_on:
                known = ", ".join(sorted(depends_on)) or "none"
                problems.append(
                    DependencyProblem(app, index, f"unknown app '{dep}' (known: {known})")
                )
    problems.extend(_cycles(depends_on))
    return problems


def _cycles(depends_on: Mapping[str, Sequence[str]]) -> list[DependencyProblem]:
    """One problem per distinct cycle found by a depth-first walk (back edges)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []
    seen: set[frozenset[str]] = set()
    found: list[DependencyProblem] = []

    def walk(app: str) -> None:
        state[app] = 1
        path.append(app)
        for dep in depends_on[app]:
            if dep not in depends_on:
                continue
            if state.get(dep) == 1:
                loop = path[path.index(dep) :]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    found.append(_cycle_problem(loop, depends_on))
            elif dep not in state:
                walk(dep)
        path.pop()
        state[app] = 2

    for app in sorted(depends_on):
        if app not in state:
            walk(app)
    return found


def _cycle_problem(loop: list[str], depends_on: Mapping[str, Sequence[str]]) -> DependencyProblem:
    start = loop.index(min(loop))
    ordered = loop[start:] + loop[:start]
    after = ordered[1] if len(ordered) > 1 else ordered[0]
    chain = " -> ".join([*ordered, ordered[0]])
    return DependencyProblem(
        ordered[0],
        list(depends_on[ordered[0]]).index(after),
        f"dependency cycle {chain}: remove one of these depends_on entries",
    )


def dependents(depends_on: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The reverse map: app → the apps that wait for it."""
    reverse: dict[str, list[str]] = {app: [] for app in depends_on}
    for app, deps in depends_on.items():
        for dep in deps:
            reverse.setdefault(dep, []).append(app)
    return reverse
