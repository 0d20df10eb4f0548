"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (HTTPS only, RBAC),
kube-controller-manager, kube-scheduler, and kwok managing fake nodes.

Started in dependency order, each waited for before the next: etcd answers `/health`, the
API server `/readyz`, the controllers `/healthz`, and the nodes report `Ready`. The
controllers and scheduler run as their own identities, as in a kubeadm cluster.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from testbed import building, versions
from testbed.pki import SERVICE_RANGE, Pair, Pki, load_pki, make_pki
from testbed.processes import Running, free_port, start, stop

NODES = 3
"""Fake nodes kwok manages: enough for spread constraints and DaemonSets to mean something."""


class StartError(RuntimeError):
    """A part did not become ready; the message names it and its log."""


def start_kube(folder: Path, say: Callable[[str], None]) -> tuple[list[Running], Path]:
    """Start the control plane; returns its processes and the admin kubeconfig."""
    pki = make_pki(folder / "pki")
    logs = folder / "logs"
    kube, etcd, kwok = building.kubernetes(), building.etcd(), building.kwok()
    started: list[Running] = []
    try:
        started.append(_start_etcd(folder, logs, etcd))
        api = _start_apiserver(folder, logs, kube, pki, etcd_port=started[0].port or 0)
        started.append(api)
        kubeconfig = _kubeconfig(folder / "kubeconfig", api.port or 0, pki, pki.admin)
        say(f"kube-apiserver {versions.KUBERNETES} ready on https://127.0.0.1:{api.port}")
        cm_config = _kubeconfig(
            folder / "controller-manager.kubeconfig", api.port or 0, pki, pki.controller_manager
        )
        started.append(_start_controller_manager(logs, kube, pki, cm_config))
        sched_config = _kubeconfig(
            folder / "scheduler.kubeconfig", api.port or 0, pki, pki.scheduler
        )
        started.append(_start_scheduler(logs, kube, sched_config))
        started.append(_start_kwok(logs, kwok, kubeconfig))
        _create_nodes(kubeconfig)
        _wait_cluster_ready(kubeconfig)
        say(f"controllers, scheduler and {NODES} kwok nodes ready")
    except BaseException:
        for running in reversed(started):
            stop(running)
        raise
    return started, kubeconfig


def start_second_apiserver(folder: Path, name: str, flags: list[str]) -> tuple[Running, Path]:
    """Another API server on the running bed's etcd, with `flags` added; and its kubeconfig.

    For a test that needs a real server configured unlike the bed's own (a low
    `--max-requests-inflight`, say) and the same objects; the caller stops it.
    """
    state = json.loads((folder / "state.json").read_text())
    etcd = next(p for p in state["processes"] if p["name"] == "etcd")
    pki = load_pki(folder / "pki")
    work = folder / name
    work.mkdir(parents=True, exist_ok=True)
    running = _start_apiserver(
        work, folder / "logs", building.kubernetes(), pki, etcd["port"], name=name, extra=flags
    )
    return running, _kubeconfig(work / "kubeconfig", running.port or 0, pki, pki.admin)


def _start_etcd(folder: Path, logs: Path, part: building.GoPart) -> Running:
    client, peer = free_port(), free_port()
    argv = [
        str(part.binary("etcd")),
        "--name=testbed",
        f"--data-dir={folder / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=testbed=http://127.0.0.1:{peer}",
        "--unsafe-no-fsync",  # a throwaway test store: durability is not under test
        "--log-level=warn",
    ]
    running = start("etcd", argv, logs / "etcd.log", port=client, version=versions.ETCD)
    _wait_http(running, f"http://127.0.0.1:{client}/health", None, lambda body: b'"true"' in body)
    return running


def _start_apiserver(
    folder: Path,
    logs: Path,
    part: building.GoPart,
    pki: Pki,
    etcd_port: int,
    *,
    name: str = "kube-apiserver",
    extra: list[str] | None = None,
) -> Running:
    port = free_port()
    argv = [
        str(part.binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # The endpoint reconciler refuses a loopback address; nothing here reaches the API
        # server through the `kubernetes` Service anyway.
        "--endpoint-reconciler-type=none",
        f"--secure-port={port}",
        f"--cert-dir={folder / 'apiserver-certs'}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        "--authorization-mode=Node,RBAC",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        f"--service-account-key-file={pki.service_account_pub}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
        *(extra or []),
    ]
    running = start(name, argv, logs / f"{name}.log", port=port, version=versions.KUBERNETES)
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    try:
        _wait_http(running, f"https://127.0.0.1:{port}/readyz", context, lambda b: b == b"ok", 90)
    except BaseException:
        stop(running)
        raise
    return running


def _start_controller_manager(
    logs: Path, part: building.GoPart, pki: Pki, kubeconfig: Path
) -> Running:
    port = free_port()
    argv = [
        *_component(part.binary("kube-controller-manager"), kubeconfig, port),
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
        "--controllers=*",
    ]
    running = start(
        "kube-controller-manager",
        argv,
        logs / "kube-controller-manager.log",
        port=port,
        version=versions.KUBERNETES,
    )
    _wait_http(running, f"https://127.0.0.1:{port}/healthz", _unverified(), lambda b: b == b"ok")
    return running


def _start_scheduler(logs: Path, part: building.GoPart, kubeconfig: Path) -> Running:
    port = free_port()
    argv = _component(part.binary("kube-scheduler"), kubeconfig, port)
    running = start(
        "kube-scheduler", argv, logs / "kube-scheduler.log", port=port, version=versions.KUBERNETES
    )
    _wait_http(running, f"https://127.0.0.1:{port}/healthz", _unverified(), lambda b: b == b"ok")
    return running


def _component(binary: Path, kubeconfig: Path, port: int) -> list[str]:
    """The flags the controller-manager and scheduler share: who they are, where they serve."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",  # one of each, no HA to elect among
        "--profiling=false",
        "--v=1",
    ]


def _start_kwok(logs: Path, part: building.GoPart, kubeconfig: Path) -> Running:
    port = free_port()
    argv = [
        str(part.binary("kwok")),
        *(f"--config={part.file(path)}" for path in part.files),
        f"--kubeconfig={kubeconfig}",
        "--node-lease-duration-seconds=40",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/16",
        "--node-ip=127.0.0.1",
        f"--server-address=127.0.0.1:{port}",
    ]
    running = start("kwok", argv, logs / "kwok.log", port=port, version=versions.KWOK)
    _wait_http(running, f"http://127.0.0.1:{port}/healthz", None, lambda b: b"ok" in b)
    return running


def _create_nodes(kubeconfig: Path) -> None:
    """Nodes kwok manages: no taints, so every workload of the tests lands on them."""
    items = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{index}",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "kubernetes.io/hostname": f"kwok-node-{index}",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
            },
        }
        for index in range(NODES)
    ]
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    _kubectl(kubeconfig, ["apply", "--server-side", "-f", "-"], manifest)


def _wait_cluster_ready(kubeconfig: Path, timeout: float = 90.0) -> None:
    """Nodes Ready and the default ServiceAccount made: Pods can be created and run."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            nodes = json.loads(_kubectl(kubeconfig, ["get", "nodes", "-o", "json"]))
            ready = [
                node
                for node in nodes["items"]
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in node.get("status", {}).get("conditions", [])
                )
            ]
            _kubectl(kubeconfig, ["get", "serviceaccount", "default", "-n", "default"])
            if len(ready) >= NODES:
                return
            last = f"{len(ready)} of {NODES} nodes Ready"
        except StartError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise StartError(f"the cluster did not become ready in {timeout:.0f} s: {last}")


def _kubectl(kubeconfig: Path, args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise StartError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _kubeconfig(path: Path, port: int, pki: Pki, user: Pair) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "testbed",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority": str(pki.ca.cert),
                },
            }
        ],
        "users": [
            {
                "name": "testbed",
                "user": {"client-certificate": str(user.cert), "client-key": str(user.key)},
            }
        ],
        "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": "testbed"}}],
        "current-context": "testbed",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _unverified() -> ssl.SSLContext:
    """The controllers serve health on self-signed certificates they make at start."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _wait_http(
    running: Running,
    url: str,
    context: ssl.SSLContext | None,
    ok: Callable[[bytes], bool],
    timeout: float = 60.0,
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not running.alive():
            raise StartError(f"{running.name} exited while starting; see {running.log}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as answer:  # noqa: S310
                body = answer.read()
                if ok(body.strip()):
                    return
                last = body[:200].decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StartError(
        f"{running.name} was not ready after {timeout:.0f} s ({url}: {last}); see {running.log}"
    )
