"""What people and controllers do to live objects, with the real kubectl and controllers.

On a real cluster much changes that Git never declared: the server defaults fields, the
controllers write status, revisions and ReplicaSets, and people label, annotate and
restart rollouts. None of that is drift. What is drift is a change to a field Git
declares (`kubectl scale`, `kubectl set image`), and it is named by that field alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.events import DriftDetected
from syncer.service import Syncer
from tests.drift.conftest import events, eventually, synced
from tests.drift.test_diff_command import gitops
from tests.syncer.conftest import configmap, deployment, namespace_yaml

MakeBench = Callable[..., Any]

WORKLOADS = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:16", ports: [{containerPort: 5432}]}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "busybox:1.36"}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "busybox:1.36", command: ["true"]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: "busybox:1.36"}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api-nodeport}
spec:
  type: NodePort
  selector: {app: api}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: runner}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: api}}
"""
OBJECTS = 15  # the Namespace, the Deployment, the ConfigMap and the 12 above


async def kubectl(kubeconfig: Path, namespace: str, *args: str) -> str:
    """Run the real kubectl as a user would (asynchronously: the proxy shares our loop)."""
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        *("--kubeconfig", str(kubeconfig), "--namespace", namespace, *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, (args, err.decode())
    return out.decode()


async def test_what_kubectl_and_controllers_add_is_no_drift_but_scale_and_set_image_are(
    bench: MakeBench, kubeconfig: Path, tmp_path: Path, namespace: str
) -> None:
    app = {"repo": "platform", "path": "apps/web", "cluster": "dev", "namespace": namespace}
    b = await bench(
        apps={"web": {**app, "self_heal": False, "interval": "2s"}},
        syncer={"health_timeout": "60s"},
    )
    files = {
        "apps/web/ns.yaml": namespace_yaml(b.ns),
        "apps/web/api.yaml": deployment("api", replicas=2),
        "apps/web/cm.yaml": configmap("settings", color="blue"),
        "apps/web/workloads.yaml": WORKLOADS,
    }
    await asyncio.to_thread(b.repo.commit_and_push, files)

    async def drifts() -> list[DriftDetected]:
        found = await events(b.bootstrap, b.topics.sync_events)
        return [e for e in found if isinstance(e, DriftDetected)]

    async with Syncer(b.config, syncer_id="s1", periodic_checks=True):
        await b.request("web")
        # The syncer's own branch-head poll at assignment may supersede the request: the
        # first success, whichever request it answers, is the first sync.
        (first, *_), _ = await eventually(
            lambda: synced(b.bootstrap, b.topics.sync_events), timeout=90
        )
        assert first.data.health == "healthy", first
        code, out, err = await gitops(b.config, tmp_path, "diff", "web")
        assert (code, err) == (0, ""), out
        assert f"no drift: {OBJECTS} objects match Git" in out

        # What people do beside Git, and what the controllers do in answer (new
        # ReplicaSets, new Pods, revisions, status), while the drift checks keep running.
        await kubectl(kubeconfig, b.ns, "label", "deployment/api", "team=payments")
        await kubectl(kubeconfig, b.ns, "annotate", "service/api", "owner=ops")
        await kubectl(kubeconfig, b.ns, "rollout", "restart", "deployment/api")
        await kubectl(kubeconfig, b.ns, "rollout", "restart", "statefulset/db")
        for workload in ("deployment/api", "statefulset/db"):
            await kubectl(kubeconfig, b.ns, "rollout", "status", workload, "--timeout=60s")
        code, out, err = await gitops(b.config, tmp_path, "diff", "web")
        assert (code, err) == (0, ""), out
        assert f"no drift: {OBJECTS} objects match Git" in out
        assert await drifts() == []

        # Changes to fields Git declares: drift, each named by its field only.
        await kubectl(kubeconfig, b.ns, "scale", "deployment/api", "--replicas=4")
        await kubectl(kubeconfig, b.ns, "set", "image", "statefulset/db", "db=postgres:17")
        code, out, err = await gitops(b.config, tmp_path, "diff", "web")
        assert code == 1, err
        assert f"Deployment {b.ns}/api: changed spec.replicas\n" in out
        image = "spec.template.spec.containers[name=db].image"
        assert f"StatefulSet {b.ns}/db: changed {image}\n" in out
        assert f"2 of {OBJECTS} objects differ from Git" in out

        # The periodic check reports the same (an event may come between the two edits).
        expected = {
            ("Deployment", "api", "changed", ("spec.replicas",)),
            ("StatefulSet", "db", "changed", (image,)),
        }

        def named(event: DriftDetected) -> set[tuple[str, str, str, tuple[str, ...]]]:
            return {(o.kind, o.name, o.state, tuple(o.fields)) for o in event.data.objects}

        async def both() -> list[DriftDetected]:
            return [e for e in await drifts() if named(e) == expected]

        await eventually(both, timeout=15)
        assert all(named(e) <= expected for e in await drifts())
