"""``python -m devcluster [--host H] [--port P] [--kubeconfig PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from devcluster.cli import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devcluster")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
            uvloop.run(serve(args.host, args.port, args.kubeconfig))
        except ImportError:
            asyncio.run(serve(args.host, args.port, args.kubeconfig))


if __name__ == "__main__":
    main()
