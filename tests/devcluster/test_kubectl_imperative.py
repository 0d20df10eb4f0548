"""What a user types while trying ``gitops up``: kubectl's imperative commands, checked by
what kubectl prints and by the object read back. kubectl's namespace is the test's own;
cluster-scoped objects are named ``server.name(...)``.

``kubectl create <kind>`` sends protobuf bodies (``run``, ``edit`` and ``delete`` send
JSON); each created object must be the one the same command sends as JSON gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.devcluster.conftest import Kubectl, Server, free_node_port

# (kubectl create arguments after the name, what kubectl prints, resource to read back)
CREATES = {
    "namespace": (["namespace"], "namespace/{name} created", "namespace"),
    "configmap": (
        ["configmap", "--from-literal=a=b", "--from-literal=color=blue"],
        "configmap/{name} created",
        "configmap",
    ),
    "secret": (
        ["secret", "generic", "--from-literal=a=b"],
        "secret/{name} created",
        "secret",
    ),
    "deployment": (
        ["deployment", "--image=nginx", "--port=80"],
        "deployment.apps/{name} created",
        "deployment",
    ),
    "service": (["service", "clusterip", "--tcp=80:8080"], "service/{name} created", "service"),
    "nodeport": (
        ["service", "nodeport", "--tcp=80:http", "--node-port={port}"],
        "service/{name} created",
        "service",
    ),
    "serviceaccount": (["serviceaccount"], "serviceaccount/{name} created", "serviceaccount"),
    "job": (["job", "--image=busybox", "--", "echo", "hi"], "job.batch/{name} created", "job"),
    "cronjob": (
        ["cronjob", "--image=busybox", "--schedule=*/5 * * * *"],
        "cronjob.batch/{name} created",
        "cronjob",
    ),
    "role": (
        ["role", "--verb=get,list", "--resource=pods,configmaps"],
        "role.rbac.authorization.k8s.io/{name} created",
        "role",
    ),
    "clusterrole": (
        ["clusterrole", "--verb=get", "--resource=namespaces"],
        "clusterrole.rbac.authorization.k8s.io/{name} created",
        "clusterrole",
    ),
    "clusterrolebinding": (
        ["clusterrolebinding", "--clusterrole=viewer", "--user=alice"],
        "clusterrolebinding.rbac.authorization.k8s.io/{name} created",
        "clusterrolebinding",
    ),
    "registry-secret": (
        [
            "secret",
            "docker-registry",
            "--docker-server=registry.example",
            "--docker-username=u",
            "--docker-password=p",
        ],
        "secret/{name} created",
        "secret",
    ),
    "rolebinding": (
        ["rolebinding", "--role=reader", "--serviceaccount=default:robot"],
        "rolebinding.rbac.authorization.k8s.io/{name} created",
        "rolebinding",
    ),
    "externalname": (
        ["service", "externalname", "--external-name=db.example.com"],
        "service/{name} created",
        "service",
    ),
    "loadbalancer": (
        ["service", "loadbalancer", "--tcp=80:8080"],
        "service/{name} created",
        "service",
    ),
    "ingress": (
        ["ingress", "--class=default", "--rule=shop.example/cart*=cart:8080,tls=shop-tls"],
        "ingress.networking.k8s.io/{name} created",
        "ingress",
    ),
    "poddisruptionbudget": (
        ["poddisruptionbudget", "--selector=app=x", "--min-available=1"],
        "poddisruptionbudget.policy/{name} created",
        "poddisruptionbudget",
    ),
    "quota": (
        ["quota", "--hard=pods=2,requests.cpu=1,configmaps=5"],
        "resourcequota/{name} created",
        "resourcequota",
    ),
    "priorityclass": (
        ["priorityclass", "--value=1000", "--description=batch", "--preemption-policy=Never"],
        "priorityclass.scheduling.k8s.io/{name} created",
        "priorityclass",
    ),
}


CLUSTER_SCOPED = frozenset({"namespace", "clusterrole", "clusterrolebinding", "priorityclass"})


def _create_args(what: str, name: str, port: int = 0) -> list[str]:
    """``port``: the node port of a nodeport Service (cluster-wide: the test's own)."""
    args = [arg.format(port=port) for arg in CREATES[what][0]]
    head = 2 if args[0] in ("secret", "service") else 1
    return ["create", *args[:head], name, *args[head:]]


async def _get(kubectl: Kubectl, *args: str) -> Any:
    result = await kubectl("get", *args, "-o", "json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what differs between any two writes: identity (also where a
    Job's selector and labels carry its uid), times, where it is (name and namespace),
    status, and the cluster IP and node ports the server allocates."""
    obj = json.loads(json.dumps(obj).replace(obj["metadata"]["uid"], "UID"))
    metadata = {
        k: v
        for k, v in obj["metadata"].items()
        if k
        not in (
            "name",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "namespace",
            "generation",
        )
    }
    labels = {
        k: v
        for k, v in (metadata.pop("labels", None) or {}).items()
        if k != "kubernetes.io/metadata.name"  # a namespace's own name
    }
    if labels:
        metadata["labels"] = labels
    spec = dict(obj.get("spec") or {})
    for key in ("clusterIP", "clusterIPs"):
        spec.pop(key, None)
    if "ports" in spec and obj["kind"] == "Service":
        spec["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec["ports"]]
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status", "spec")}
    return {**rest, "metadata": metadata, "spec": spec}


def _name(server: Server, what: str, name: str) -> str:
    return server.name(name) if CREATES[what][2] in CLUSTER_SCOPED else name


def _node_ports(obj: dict[str, Any]) -> list[int]:
    return [p["nodePort"] for p in obj["spec"]["ports"]]


@pytest.mark.parametrize("what", sorted(CREATES))
async def test_kubectl_create_prints_created_and_the_object_is_stored(
    kubectl: Kubectl, server: Server, what: str
) -> None:
    name = _name(server, what, "sample")
    port = await free_node_port(server)
    result = await kubectl(*_create_args(what, name, port))
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == CREATES[what][1].format(name=name)
    obj = await _get(kubectl, CREATES[what][2], name)
    assert obj["metadata"]["name"] == name
    if what == "nodeport":
        assert _node_ports(obj) == [port]


@pytest.mark.parametrize("what", sorted(CREATES))
async def test_kubectl_create_over_protobuf_stores_what_the_json_request_stores(
    kubectl: Kubectl, server: Server, what: str
) -> None:
    """The same command, once as kubectl sends it (protobuf), once printed with
    --dry-run=client -o json and created from that (JSON): both stored objects are the
    same but for identity and times. Namespaced objects keep their name (labels carry it)
    in namespaces `pb-…` and `js-…`; cluster-scoped ones are named `pb-…` and `js-…`."""
    resource = CREATES[what][2]
    made = {"pb": server.name("pb"), "js": server.name("js")}
    if resource in CLUSTER_SCOPED:
        names = made
        scope: dict[str, list[str]] = {"pb": [], "js": []}
    else:
        names = {"pb": "same", "js": "same"}
        scope = {"pb": ["-n", made["pb"]], "js": ["-n", made["js"]]}
        for namespace in made.values():
            assert (await kubectl("create", "namespace", namespace)).code == 0
    ports = {"pb": await free_node_port(server), "js": await free_node_port(server)}
    created = await kubectl(*scope["pb"], *_create_args(what, names["pb"], ports["pb"]))
    assert created.code == 0, created.stderr
    printed = await kubectl(
        *scope["js"],
        "--dry-run=client",
        "-o",
        "json",
        *_create_args(what, names["js"], ports["js"]),
    )
    assert printed.code == 0, printed.stderr
    from_json = await kubectl(*scope["js"], "create", "-f", "-", stdin=printed.stdout)
    assert from_json.code == 0, from_json.stderr
    over_protobuf = await _get(kubectl, resource, names["pb"], *scope["pb"])
    over_json = await _get(kubectl, resource, names["js"], *scope["js"])
    assert _comparable(over_protobuf) == _comparable(over_json)
    if what == "nodeport":
        assert (_node_ports(over_protobuf), _node_ports(over_json)) == (
            [ports["pb"]],
            [ports["js"]],
        )


async def test_kubectl_create_namespace_is_active(kubectl: Kubectl, server: Server) -> None:
    x = server.name("x")
    result = await kubectl("create", "namespace", x)
    assert (result.code, result.stdout.strip()) == (0, f"namespace/{x} created"), result.stderr
    namespace = await _get(kubectl, "namespace", x)
    assert namespace["status"]["phase"] == "Active"
    listed = await kubectl("get", "namespaces")
    assert f"{x} " in listed.stdout


async def test_kubectl_create_configmap_and_secret_data(kubectl: Kubectl) -> None:
    assert (await kubectl("create", "configmap", "c", "--from-literal=a=b")).code == 0
    assert (await _get(kubectl, "configmap", "c"))["data"] == {"a": "b"}
    assert (await kubectl("create", "secret", "generic", "s", "--from-literal=a=b")).code == 0
    secret = await _get(kubectl, "secret", "s")
    assert secret["data"] == {"a": "Yg=="}
    assert secret["type"] == "Opaque"
    decoded = await kubectl("get", "secret", "s", "-o", "go-template={{.data.a | base64decode}}")
    assert decoded.stdout == "b"


async def test_kubectl_run_creates_a_pod(kubectl: Kubectl) -> None:
    result = await kubectl("run", "p", "--image=nginx")
    assert (result.code, result.stdout.strip()) == (0, "pod/p created"), result.stderr
    pod = await _get(kubectl, "pod", "p")
    assert pod["metadata"]["labels"] == {"run": "p"}
    assert [(c["name"], c["image"]) for c in pod["spec"]["containers"]] == [("p", "nginx")]
    listed = await kubectl("get", "pods")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["NAME", "p"]


async def test_kubectl_create_deployment_becomes_available(kubectl: Kubectl) -> None:
    result = await kubectl("create", "deployment", "d", "--image=nginx")
    assert (result.code, result.stdout.strip()) == (0, "deployment.apps/d created"), result.stderr
    deployment = await _get(kubectl, "deployment", "d")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    waited = await kubectl("wait", "--for=condition=Available", "deployment/d", "--timeout=60s")
    assert waited.code == 0, waited.stderr


async def test_kubectl_create_deployment_with_zero_replicas_keeps_zero(kubectl: Kubectl) -> None:
    """replicas is a pointer: a protobuf 0 is written (and kept), not defaulted to 1."""
    result = await kubectl("create", "deployment", "idle", "--image=nginx", "--replicas=0")
    assert result.code == 0, result.stderr
    assert (await _get(kubectl, "deployment", "idle"))["spec"]["replicas"] == 0


async def test_kubectl_edit_changes_the_object(kubectl: Kubectl, tmp_path: Path) -> None:
    """`kubectl edit` with EDITOR set to a script: the change is saved and shown."""
    assert (await kubectl("create", "configmap", "c", "--from-literal=a=b")).code == 0
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^  a: b$/  a: edited/' \"$1\"\n")
    editor.chmod(0o755)
    result = await kubectl("edit", "configmap", "c", extra_env={"EDITOR": str(editor)})
    assert (result.code, result.stdout.strip()) == (0, "configmap/c edited"), result.stderr
    assert (await _get(kubectl, "configmap", "c"))["data"] == {"a": "edited"}
    unchanged = await kubectl("edit", "configmap", "c", extra_env={"EDITOR": "true"})
    assert unchanged.code == 0, unchanged.stderr
    assert "Edit cancelled, no changes made." in unchanged.stderr


async def test_kubectl_delete_removes_what_create_made(
    kubectl: Kubectl, server: Server, ns: str
) -> None:
    x = server.name("x")
    for args in (
        ["create", "namespace", x],
        ["create", "configmap", "c", "--from-literal=a=b"],
        ["run", "p", "--image=nginx"],
        ["create", "deployment", "d", "--image=nginx"],
    ):
        assert (await kubectl(*args)).code == 0
    result = await kubectl("delete", "configmap", "c")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == f'configmap "c" deleted from {ns} namespace'
    result = await kubectl("delete", "pod/p", "deployment/d", "--timeout=60s")
    assert result.code == 0, result.stderr
    assert 'pod "p" deleted' in result.stdout
    assert 'deployment.apps "d" deleted' in result.stdout
    result = await kubectl("delete", "namespace", x, "--timeout=60s")
    assert (result.code, result.stdout.strip()) == (0, f'namespace "{x}" deleted'), result.stderr
    for kind, name in (("configmap", "c"), ("pod", "p"), ("deployment", "d"), ("namespace", x)):
        gone = await kubectl("get", kind, name)
        assert gone.code != 0
        assert "NotFound" in gone.stderr
