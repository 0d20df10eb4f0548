"""The test bed is what it claims: a real v1.37.2 control plane whose workloads run, and an
Apache Kafka that takes idempotent producers, as a user would check with their own tools.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from confluent_kafka import Consumer, Producer

from testbed import versions
from testbed.bed import Bed
from tests.support.bed import unique_name


def kubectl(bed: Bed, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={bed.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kubectl_version_shows_the_pinned_server_version(bed: Bed) -> None:
    server = json.loads(kubectl(bed, "version", "-o", "json"))["serverVersion"]
    assert server["gitVersion"] == versions.KUBERNETES
    assert (server["major"], server["minor"]) == ("1", versions.KUBERNETES.split(".")[1])


def test_the_api_is_served_over_https_only(bed: Bed) -> None:
    assert bed.kubeconfig is not None
    server = yaml.safe_load(bed.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://127.0.0.1:")
    plain = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", server.replace("https", "http")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.stdout == "400"  # Go's TLS server answers plain HTTP with 400


def test_kubectl_create_namespace_works(bed: Bed) -> None:
    name = unique_name("kc")
    assert kubectl(bed, "create", "namespace", name).strip() == f"namespace/{name} created"
    assert json.loads(kubectl(bed, "get", "namespace", name, "-o", "json"))["status"] == {
        "phase": "Active"
    }


def test_a_deployment_becomes_available_on_the_fake_nodes(bed: Bed) -> None:
    name = unique_name("dep")
    kubectl(bed, "create", "namespace", name)
    kubectl(bed, "-n", name, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    out = kubectl(
        bed, "-n", name, "wait", "deployment/web", "--for=condition=Available", "--timeout=60s"
    )
    assert "condition met" in out
    pods = json.loads(kubectl(bed, "-n", name, "get", "pods", "-o", "json"))["items"]
    assert len(pods) == 2
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)


def test_a_job_runs_to_completion(bed: Bed) -> None:
    name = unique_name("job")
    kubectl(bed, "create", "namespace", name)
    kubectl(bed, "-n", name, "create", "job", "migrate", "--image=busybox:1.36")
    out = kubectl(
        bed, "-n", name, "wait", "job/migrate", "--for=condition=Complete", "--timeout=60s"
    )
    assert "condition met" in out


def test_namespace_deletion_removes_its_objects(bed: Bed) -> None:
    name = unique_name("del")
    kubectl(bed, "create", "namespace", name)
    kubectl(bed, "-n", name, "create", "configmap", "c", "--from-literal=a=b")
    kubectl(bed, "delete", "namespace", name, "--wait=true", "--timeout=60s")
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={bed.kubeconfig}", "get", "namespace", name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "NotFound" in done.stderr


def test_an_idempotent_librdkafka_producer_writes_to_kafka(bed: Bed) -> None:
    assert bed.kafka_bootstrap is not None
    topic = unique_name("bedcheck")
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bed.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=30
    )
    delivered: list[int] = []
    producer = Producer({"bootstrap.servers": bed.kafka_bootstrap, "enable.idempotence": True})
    producer.produce(
        topic, b"hello", key=b"k", on_delivery=lambda err, msg: delivered.append(msg.offset())
    )
    assert producer.flush(30) == 0
    assert delivered == [0]
    consumer = Consumer(
        {
            "bootstrap.servers": bed.kafka_bootstrap,
            "group.id": topic,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    value = None
    while value is None and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            value = message.value()
    consumer.close()
    assert value == b"hello"


def test_status_reports_every_part_running(bed: Bed) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "testbed", "status", str(bed.folder)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    running = json.loads(done.stdout)["running"]
    assert set(running) == {
        "kafka",
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert all(running.values())


def runs(pid: int) -> bool:
    """Running, as `ps` shows it: present and not a zombie waiting for its reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_down_stops_exactly_the_processes_up_started(bed: Bed, tmp_path: Path) -> None:
    """A second bed (Kafka only) in its own folder: `down` ends it and leaves the run's bed."""
    folder = tmp_path / "second"
    root = Path(__file__).resolve().parents[2]

    def testbed(*args: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "testbed", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=root,
            timeout=300,
        )
        assert done.returncode in (0, 1), done.stderr
        answer: dict[str, object] = json.loads(done.stdout)
        return answer

    up = testbed("up", str(folder), "--only", "kafka")
    assert (folder / "kafka-bootstrap").read_text().strip() == up["bootstrap"]
    state = json.loads((folder / "state.json").read_text())
    (broker,) = state["processes"]
    assert broker["name"] == "kafka" and runs(broker["pid"])

    assert testbed("down", str(folder)) == {"stopped": ["kafka"]}
    assert not runs(broker["pid"])
    assert testbed("status", str(folder)) == {"dir": str(folder), "running": {}}
    assert all(bed.running().values())
