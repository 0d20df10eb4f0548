"""`python -m testbed up DIR [--only kube|kafka]`, `down DIR`, `status DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from testbed.bed import down, load, up
from testbed.building import BuildError
from testbed.kafka import KafkaStartError
from testbed.kube import StartError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testbed",
        description="The real parts the tests run against: Kubernetes and Apache Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="build what is missing, start, wait until ready")
    up_parser.add_argument("dir", type=Path)
    up_parser.add_argument("--only", choices=["kube", "kafka"])
    commands.add_parser("down", help="stop the processes `up` started").add_argument(
        "dir", type=Path
    )
    commands.add_parser("status", help="say what runs").add_argument("dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "up":
        try:
            bed = up(args.dir, args.only)
        except (BuildError, StartError, KafkaStartError) as exc:
            print(f"testbed: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(bed.summary()))
        return 0
    if args.command == "down":
        stopped = down(args.dir)
        print(json.dumps({"stopped": stopped}))
        return 0
    recorded = load(args.dir.resolve())
    if recorded is None:
        print(json.dumps({"dir": str(args.dir), "running": {}}))
        return 1
    running = recorded.running()
    print(json.dumps({**recorded.summary(), "running": running}))
    return 0 if all(running.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
