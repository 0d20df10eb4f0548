"""Apache Kafka on 127.0.0.1: one KRaft node that is broker and controller at once.

Storage is formatted with Kafka's own `StorageTool` and the node started with `kafka.Kafka`,
as the distribution's scripts do, from the jars Maven resolved into the cache. It is
ready when a metadata request through librdkafka (an independent client) answers.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from testbed import building, versions
from testbed.processes import Running, free_port, start

_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.BrokerServer
        level: INFO
"""


class KafkaStartError(RuntimeError):
    """The broker did not start; the message names its log."""


def start_kafka(folder: Path, heap: str = "1g") -> tuple[Running, str]:
    """Format storage and start the node; returns it and its `host:port` bootstrap."""
    part = building.kafka()
    port, controller = free_port(), free_port()
    config = folder / "kafka" / "server.properties"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(_properties(folder / "kafka" / "data", port, controller))
    log4j = folder / "kafka" / "log4j2.yaml"
    log4j.write_text(_LOG4J2)
    java = ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", part.classpath()]
    _format(java, config)
    argv = [
        *java[:1],
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",  # fast start; a test broker's throughput needs no C2
        "-Djava.awt.headless=true",
        *java[1:],
        "kafka.Kafka",
        str(config),
    ]
    running = start("kafka", argv, folder / "logs" / "kafka.log", port=port, version=versions.KAFKA)
    bootstrap = f"127.0.0.1:{port}"
    _wait_metadata(running, bootstrap)
    return running, bootstrap


def _properties(data: Path, port: int, controller: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=12",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # Tests start many short-lived groups; a real cluster's 3 s join delay
            # would only slow each first join.
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
    )


def _format(java: list[str], config: Path) -> None:
    def tool(*args: str) -> str:
        done = subprocess.run(
            [*java, "kafka.tools.StorageTool", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise KafkaStartError(f"kafka StorageTool {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip().splitlines()[-1]

    cluster_id = tool("random-uuid")
    tool("format", "--standalone", "-t", cluster_id, "-c", str(config))


def _wait_metadata(running: Running, bootstrap: str, timeout: float = 90.0) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not running.alive():
            raise KafkaStartError(f"kafka exited while starting; see {running.log}")
        try:
            metadata = admin.list_topics(timeout=2)
            if metadata.brokers:
                return
        except KafkaException as exc:
            last = str(exc)
        time.sleep(0.3)
    raise KafkaStartError(
        f"kafka did not answer a metadata request in {timeout:.0f} s ({last}); see {running.log}"
    )
