"""YAML of the objects the engine tests sync, with ordering annotations where asked."""

from __future__ import annotations


def _annotations(wave: int | None, hook: str | None, policy: str | None) -> str:
    lines = []
    if wave is not None:
        lines.append(f'    gitops.dev/sync-wave: "{wave}"')
    if hook is not None:
        lines.append(f"    gitops.dev/hook: {hook}")
    if policy is not None:
        lines.append(f"    gitops.dev/hook-delete-policy: {policy}")
    return ("\n  annotations:\n" + "\n".join(lines)) if lines else ""


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def configmap(
    name: str, *, wave: int | None = None, namespace: str | None = None, **data: str
) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    body = "".join(f"\n  {k}: {v!r}" for k, v in (data or {"k": "v"}).items())
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}"
        f"{_annotations(wave, None, None)}\ndata:{body}\n"
    )


def deployment(
    name: str, *, wave: int | None = None, image: str = "nginx:1.27", schedulable: bool = True
) -> str:
    selector = "" if schedulable else '\n      nodeSelector: {nowhere: "true"}'
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}{_annotations(wave, None, None)}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:{selector}
      containers:
        - name: main
          image: {image}
"""


def job(
    name: str,
    *,
    hook: str | None = None,
    policy: str | None = None,
    wave: int | None = None,
    image: str = "busybox:1.36",
    fails: bool = False,
) -> str:
    """A Job kwok completes at once; `fails`: it can never be scheduled and its deadline
    of 2 s makes the Job controller fail it (reason `DeadlineExceeded`)."""
    extra = "\n  activeDeadlineSeconds: 2\n  backoffLimit: 0" if fails else "\n  backoffLimit: 0"
    selector = '\n      nodeSelector: {nowhere: "true"}' if fails else ""
    return f"""apiVersion: batch/v1
kind: Job
metadata:
  name: {name}{_annotations(wave, hook, policy)}
spec:{extra}
  template:
    spec:
      restartPolicy: Never{selector}
      containers:
        - name: main
          image: {image}
          command: ["true"]
"""


def crd(group: str, kind: str, plural: str, *, wave: int | None = None) -> str:
    return f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}{_annotations(wave, None, None)}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {kind.lower()}, listKind: {kind}List}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer}}
"""


def custom(group: str, kind: str, name: str, *, size: object = 1, wave: int | None = None) -> str:
    return f"""apiVersion: {group}/v1
kind: {kind}
metadata:
  name: {name}{_annotations(wave, None, None)}
spec:
  size: {size}
"""
