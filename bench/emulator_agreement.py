"""Regenerate docs/emulator-agreement.md: the emulator measured against kube-apiserver.

`tests/devcluster` runs each conformance test twice with the same code, once on the
emulator (`gitops up`'s embedded cluster) and once on the test bed's kube-apiserver
(`[emulator]` and `[real]` in the test ids). This script runs that folder with a JUnit
report and counts, per area of behaviour: cases run on both servers, those that agree
(passed on both) and those that differ (passed on the real server, a strict xfail on the
emulator, whose reason says how), and failures (anything else: a real-server failure
means the test is wrong, an emulator failure or XPASS means the table is stale). Tests
of the emulator's own machinery run on it alone and are counted apart, with the reason
each gives. The narrative columns (how an area differs, whether a `gitops up` user
meets it) are written below in AREAS; every number comes from the run.

    python bench/emulator_agreement.py              # run the tests, then write the doc
    python bench/emulator_agreement.py --junit J.xml   # render a saved report only

The bed must be up in `$GITOPS_TESTBED_DIR` (or startable: the tests start it).
Exit status: 0 when nothing failed (the document is written either way).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devcluster.resources import BUILTINS  # noqa: E402 - after the path is set
from testbed import versions  # noqa: E402
from testbed.bed import load  # noqa: E402

SUITE = "tests/devcluster"
TARGET = ROOT / "docs" / "emulator-agreement.md"
SERVERS = ("emulator", "real")


@dataclass(frozen=True)
class Area:
    title: str
    tests: tuple[tuple[str, str], ...]
    """(module, regex on the test function's name): a case belongs to the first area
    one of whose patterns matches."""
    how: str
    """How the emulator differs (beyond what the differing tests' reasons say)."""
    meets: str
    """Whether, and how, a `gitops up` user meets the difference."""


AREAS = (
    Area(
        "Discovery, OpenAPI, served kinds",
        (("test_discovery", r"^(?!.*crd)"),),
        f"The emulator serves {len(BUILTINS)} built-in kinds (those a GitOps repository "
        "commonly carries), kube-apiserver all of them; the tests list which. `/openapi/v3` is "
        "labelled `text/plain` by kube-apiserver, `application/json` by the emulator "
        "(same JSON body).",
        "Yes, for a manifest of a kind the emulator does not serve: its sync fails with "
        "no match for the kind.",
    ),
    Area(
        "CRDs and establishment",
        (("test_discovery", "crd"), ("test_kubectl", "crd")),
        "The emulator establishes a CRD and removes a deleted one at once; kube-apiserver "
        "a moment later (Terminating first). The tests wait for the conditions.",
        "No: the syncer waits for `Established`.",
    ),
    Area(
        "CRUD, resourceVersion, generation, identity",
        (
            (
                "test_objects",
                r"server_metadata|resource_version|existing_name|get_missing|stale_resource"
                r"|generation|unchanged_update|missing_namespace|namespace_mismatch"
                r"|cluster_scoped",
            ),
        ),
        "Agree. resourceVersions start at 100 on a fresh emulator.",
        "No.",
    ),
    Area(
        "Validation and error shapes",
        (
            (
                "test_objects",
                r"invalid_name|without_containers|selector_must|selector_is_immutable"
                r"|unknown_resource|unsupported_verb",
            ),
            ("test_discovery", "pretty"),
        ),
        "Agree on the checks tested (names, required fields, selectors, immutable "
        "fields, Status reason/code/causes).",
        "No, for what is tested.",
    ),
    Area(
        "Unknown fields (field validation)",
        (("test_field_validation", ""),),
        "The emulator has no schemas for built-in kinds: it stores unknown fields as sent. "
        "kube-apiserver drops them with a `Warning`, refuses them under "
        "`fieldValidation=Strict` (kubectl's default) and fails server-side apply.",
        "**Yes**: a misspelt field in a manifest syncs on `gitops up` and fails against a "
        "real cluster. Validate against a real cluster before relying on it.",
    ),
    Area(
        "Server-side apply, managedFields, conflicts",
        (("test_apply", ""),),
        "Agree, conflict messages included.",
        "No.",
    ),
    Area("Dry run", (("test_dry_run", ""),), "Agree.", "No."),
    Area(
        "Merge, strategic merge and JSON patch",
        (("test_objects", r"merge_patch|json_patch"),),
        "Agree.",
        "No.",
    ),
    Area(
        "Label and field selectors, paging",
        (("test_reads", r"^test_(label_selector|field_selector|unsupported_field|paging)"),),
        "Agree.",
        "No.",
    ),
    Area(
        "Watch, bookmarks, 410 Gone",
        (("test_reads", "watch"),),
        "Agree. The emulator sends bookmarks every 5 s (0.3 s in the tests); kube-apiserver"
        " about once a minute and 2 s before the watch times out.",
        "No.",
    ),
    Area(
        "Finalizers, deletion, garbage collection",
        (("test_objects", r"delete|foreground"),),
        "The emulator has no garbage collector: dependents (`ownerReferences`) of a "
        "deleted owner stay, `propagationPolicy` is accepted and not acted on.",
        "Rarely: nothing `gitops up` runs makes dependents, and the syncer prunes what it "
        "applied itself; a manifest with `ownerReferences` keeps its object on the emulator.",
    ),
    Area(
        "Namespaces: defaults each gets (kube-root-ca.crt, default ServiceAccount), termination",
        (("test_namespaces", ""),),
        "The emulator's `kube-root-ca.crt` has an empty `ca.crt` (it serves plain HTTP, "
        "there is no CA). A namespace goes in ~0.1 s on the emulator, in seconds on "
        "kube-apiserver.",
        "No: nothing runs in pods on the emulator that could read the CA.",
    ),
    Area(
        "Fields the server allocates or derives",
        (("test_objects", r"node_port|job_selector"),),
        "Agree. Cluster IPs are derived from the Service's name on the emulator, "
        "allocated at random by kube-apiserver.",
        "No.",
    ),
    Area(
        "status and scale subresources",
        (("test_status", r"spec_write|status_write|scale"),),
        "Agree.",
        "No.",
    ),
    Area(
        "Workload controllers, readiness",
        (("test_status", ""),),
        "The emulator writes workload status itself after `ready_delay` (0.5 s; 0.2 s in "
        "the tests): no ReplicaSets, no Pods, no scheduler. kube-apiserver's controllers, "
        "scheduler and kwok's nodes run real rollouts. The never-ready knob and "
        "`ready_delay` are the emulator's.",
        "Yes, visibly: `kubectl get pods` shows none and every Deployment becomes "
        "Available, whatever its nodeSelector or image; health checks pass.",
    ),
    Area(
        "kubectl apply, get, wait, delete",
        (("test_kubectl", ""),),
        "Agree.",
        "No.",
    ),
    Area(
        "kubectl create, run, edit, delete (protobuf bodies)",
        (("test_kubectl_imperative", ""),),
        "Agree: every `kubectl create` subcommand but `token` (the emulator reads their "
        "protobuf bodies and stores what the same JSON request stores).",
        "No.",
    ),
    Area(
        "Authentication and RBAC",
        (("test_access", ""),),
        "The emulator has neither: every request acts as an admin, RBAC objects are "
        "stored and never enforced. `/version` is public on both.",
        "**Yes**, wherever access is meant to be restricted: nothing is refused on "
        "`gitops up`, so a missing Role or RoleBinding (e.g. for an app's "
        "`service_account`, which the syncer is to impersonate) shows only on a real "
        "cluster.",
    ),
)


@dataclass
class Case:
    """One test case (a function and its parameters but the server)."""

    module: str
    function: str
    params: str
    outcomes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    emulator_only: str | None = None

    @property
    def label(self) -> str:
        return f"{self.module}::{self.function}" + (f"[{self.params}]" if self.params else "")

    @property
    def verdict(self) -> str:
        """agree, differ, fail, or emulator-only."""
        emulator, real = self.outcomes.get("emulator"), self.outcomes.get("real")
        if real is None and emulator is not None:
            return "emulator-only" if emulator == "passed" else "fail"
        if emulator is None or real != "passed":
            return "fail"
        return {"passed": "agree", "xfailed": "differ"}.get(emulator, "fail")


def _split(name: str) -> tuple[str, str | None, str]:
    """(function, server or None, the other parameters) of a test id."""
    function, _, rest = name.partition("[")
    params = rest.removesuffix("]")
    for server in SERVERS:
        if params == server:
            return function, server, ""
        if params.startswith(server + "-"):
            return function, server, params[len(server) + 1 :]
        if params.endswith("-" + server):
            return function, server, params[: -len(server) - 1]
    return function, None, params


def read_junit(path: Path) -> list[Case]:
    cases: dict[tuple[str, str, str], Case] = {}
    for element in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own file
        module = element.get("classname", "").rsplit(".", 1)[-1]
        function, server, params = _split(element.get("name", ""))
        case = cases.setdefault((module, function, params), Case(module, function, params))
        outcome, reason = "passed", ""
        if (bad := element.find("failure")) is not None or (
            bad := element.find("error")
        ) is not None:
            outcome, reason = "failed", (bad.get("message") or "")[:300]
        elif (skipped := element.find("skipped")) is not None:
            xfail = "xfail" in (skipped.get("type") or "")
            outcome, reason = ("xfailed" if xfail else "skipped"), skipped.get("message") or ""
        for prop in element.iter("property"):
            if prop.get("name") == "emulator_only":
                case.emulator_only = prop.get("value") or ""
        key = server or "emulator"
        case.outcomes[key] = outcome
        case.reasons[key] = reason.removeprefix("reason: ")
    return list(cases.values())


def area_of(case: Case) -> Area | None:
    for area in AREAS:
        for module, pattern in area.tests:
            if case.module == module and re.search(pattern, case.function):
                return area
    return None


@dataclass(frozen=True)
class Cost:
    seconds: float
    client_cpu: float
    """pytest, its workers, kubectl and every emulator (they run in the workers)."""
    bed_cpu: float | None
    """The bed's kube parts in the same time: shared, so other runs' work counts too."""


_KUBE_PARTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bed_cpu() -> float | None:
    folder = Path(os.environ.get("GITOPS_TESTBED_DIR") or ROOT / ".testbed")
    bed = load(folder)
    if bed is None:
        return None
    return sum(_process_cpu(p.pid) for p in bed.processes if p.name in _KUBE_PARTS)


def run_suite(junit: Path, extra: list[str]) -> tuple[int, Cost]:
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
        f"--junitxml={junit}", SUITE, *extra,
    ]  # fmt: skip
    print("running:", " ".join(command[1:]), flush=True)
    started, bed_before = time.monotonic(), _bed_cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    bed_after = _bed_cpu()
    client = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    bed = bed_after - bed_before if bed_before is not None and bed_after is not None else None
    return status, Cost(time.monotonic() - started, client, bed)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


FIXED = (
    (
        "every namespace's `kube-root-ca.crt` ConfigMap and `default` ServiceAccount",
        "none",
        "added by the emulator's namespace controller stand-in",
    ),
    (
        "a namespace sent for a cluster-scoped kind",
        "422 Invalid",
        "dropped silently, as kube-apiserver does",
    ),
    (
        "server-side apply conflicts",
        'every owner printed `"m" using v`; details with name and kind; /scale writes '
        "not counted as a manager of their own",
        'an applier by name alone, an updater `"m" [with subresource "s"] using v`; '
        "details carry the causes only; several conflicts grouped by owner; a write "
        "through /scale owns spec.replicas as its own manager and conflicts with appliers",
    ),
    (
        "apply without `fieldManager`, a `fieldManager` over 128 bytes, a `dryRun` other "
        "than `All`",
        "400 BadRequest (the 128-byte case: Invalid naming the object)",
        '422 Invalid `PatchOptions`/`CreateOptions`/... `.meta.k8s.io ""`, as '
        "kube-apiserver answers",
    ),
    (
        "a Job's selector",
        "none generated",
        "`batch.kubernetes.io/controller-uid` selector and template labels from the uid, "
        "`manualSelector: false`, `podReplacementPolicy`",
    ),
    (
        "node ports",
        "none allocated; the same port accepted twice",
        "allocated from 30000-32767, kept on update, a port in use refused (422)",
    ),
    (
        "`kubectl create ingress|poddisruptionbudget|quota|priorityclass`",
        "415 (protobuf not read), or 404 (kind not served)",
        "read from protobuf; ResourceQuota, LimitRange, PersistentVolume, PriorityClass, "
        "StorageClass and IngressClass served",
    ),
)


NOT_MEASURED = (
    "Rate limiting and API Priority and Fairness: kube-apiserver can answer 429 with "
    "`Retry-After` under load; the emulator never does.",
    "Admission beyond defaulting: ResourceQuota and LimitRange are stored by the emulator "
    "and never enforced (it runs no Pods for them to limit); admission webhooks are not "
    "served at all (see the kinds above).",
    "Events, Pod logs, exec and port-forward: the emulator records no Events and has no Pods.",
)


def render(cases: list[Case], cost: Cost | None, when: datetime) -> str:
    verdicts = Counter(c.verdict for c in cases)
    both = (
        verdicts["agree"]
        + verdicts["differ"]
        + sum(1 for c in cases if c.verdict == "fail" and "real" in c.outcomes)
    )
    by_area: dict[str, list[Case]] = defaultdict(list)
    unmapped: list[Case] = []
    for case in cases:
        if case.verdict == "emulator-only":
            continue
        area = area_of(case)
        if area is None:
            unmapped.append(case)
        else:
            by_area[area.title].append(case)
    run = (
        f"{when:%Y-%m-%d %H:%M} UTC, commit `{_commit()}`, kube-apiserver "
        f"{versions.KUBERNETES} (the test bed: with kube-controller-manager, kube-scheduler "
        f"and kwok {versions.KWOK} nodes), {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    if cost is not None:
        run += f"; {cost.seconds:.0f} s, {cost.client_cpu:.0f} s of test CPU"
        if cost.bed_cpu is not None:
            run += f" and {cost.bed_cpu:.0f} s of the bed's (shared with whatever else ran)"
    lines = [
        "# The emulator measured against kube-apiserver",
        "",
        "`gitops up` runs `devcluster`, our Kubernetes API emulator, where no cluster is "
        "configured. Its conformance tests (`tests/devcluster`) run twice, the same code "
        "on both servers: on the emulator and on the test bed's real kube-apiserver. A "
        "test that passes only on the emulator is a difference, not a pass: such tests "
        "assert what kube-apiserver does and are strict xfails on the emulator side, so a "
        "fix there turns them into failures until this table is regenerated.",
        "",
        f"Generated by `python bench/emulator_agreement.py` (it runs `pytest -q -p "
        f"no:cacheprovider -n 2 {SUITE} --junitxml=...` and counts the report); do not "
        "edit by hand.",
        "",
        f"- Run: {run}",
        f"- Cases run on both servers: {both}; **{verdicts['agree']} agree**, "
        f"**{verdicts['differ']} differ** (strict xfail on the emulator), "
        f"{verdicts['fail']} failed",
        f"- Cases of the emulator's own machinery, run on it alone: {verdicts['emulator-only']}",
        "",
        "## By area",
        "",
        "A case is one test with one set of parameters; `agree`: passed on both servers; "
        "`differ`: passed on kube-apiserver, failed (as expected) on the emulator.",
        "",
        "| area | cases | agree | differ | failed | how the emulator differs | can a `gitops up` "
        "user meet it? |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for area in AREAS:
        mine = by_area.get(area.title, [])
        count = Counter(c.verdict for c in mine)
        lines.append(
            f"| {area.title} | {len(mine)} | {count['agree']} | {count['differ']} | "
            f"{count['fail']} | {_cell(area.how)} | {_cell(area.meets)} |"
        )
    if unmapped:
        lines.append(
            f"| (no area) | {len(unmapped)} | "
            + " | ".join(str(sum(c.verdict == v for c in unmapped)) for v in ("agree", "differ"))
            + f" | {sum(c.verdict == 'fail' for c in unmapped)} | "
            + _cell(", ".join(c.label for c in unmapped))
            + " | |"
        )
    lines += ["", "## Every difference", "", "| test | how, and what it means for users |"]
    lines.append("| --- | --- |")
    for case in sorted((c for c in cases if c.verdict == "differ"), key=lambda c: c.label):
        lines.append(f"| `{_cell(case.label)}` | {_cell(case.reasons.get('emulator', ''))} |")
    failed = [c for c in cases if c.verdict == "fail"]
    if failed:
        lines += ["", "## Failed", "", "| test | outcomes | message |", "| --- | --- | --- |"]
        for case in sorted(failed, key=lambda c: c.label):
            outcomes = ", ".join(f"{s}: {o}" for s, o in sorted(case.outcomes.items()))
            bad = [s for s, o in case.outcomes.items() if o != "passed"] or list(case.reasons)
            message = next((case.reasons[s] for s in bad if case.reasons.get(s)), "")
            lines.append(f"| `{_cell(case.label)}` | {outcomes} | {_cell(message)} |")
    only: dict[str, Counter[str]] = defaultdict(Counter)
    for case in cases:
        if case.verdict == "emulator-only":
            only[case.emulator_only or "(no reason given)"][case.module] += 1
    lines += [
        "",
        "## Run on the emulator alone",
        "",
        "| why not on kube-apiserver | modules (cases) |",
        "| --- | --- |",
    ]
    for reason, modules in sorted(only.items()):
        listed = ", ".join(f"`{m}` ({n})" for m, n in sorted(modules.items()))
        lines.append(f"| {_cell(reason)} | {listed} |")
    lines += [
        "",
        "## Not measured here",
        "",
        *(f"- {item}" for item in NOT_MEASURED),
        "",
        "## Fixed in the emulator when it was first measured",
        "",
        "What the emulator did until these tests first ran against kube-apiserver (issue "
        "13), and what it does now, as kube-apiserver does; the tests above hold it there.",
        "",
        "| behaviour | the emulator did | it does now |",
        "| --- | --- | --- |",
        *(f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in FIXED),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--junit", type=Path, help="render this JUnit report, run nothing")
    parser.add_argument("--out", type=Path, default=TARGET)
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    cost = None
    status = 0
    with tempfile.TemporaryDirectory() as scratch:
        junit = args.junit
        if junit is None:
            junit = Path(scratch) / "junit.xml"
            status, cost = run_suite(junit, args.pytest_args)
        cases = read_junit(junit)
    text = render(cases, cost, datetime.now(UTC))
    args.out.write_text(text, encoding="utf-8")
    failed = sum(c.verdict == "fail" for c in cases)
    print(f"wrote {args.out}: {len(cases)} cases, {failed} failed")
    return 0 if failed == 0 and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
