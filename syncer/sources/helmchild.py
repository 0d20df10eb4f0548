"""The child process that renders one chart with the Helm SDK (`python -m ...helmchild`).

The Helm SDK runs Go templates from the commit in-process through ctypes; a template
that never ends could not be stopped in a thread. Rendering here, in a process of its
own, lets the worker kill it on timeout. Protocol: a JSON request on stdin
(`chart`, `values`, `name`, `namespace`), a JSON answer on stdout: `{"manifests":
{template path: text}, "crds": {file: text}}` or `{"error": kind, "message": text}`.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def render(request: dict[str, Any]) -> dict[str, Any]:
    import helm_python as helm

    try:
        with helm.Chart.load(request["chart"]) as chart:
            manifests: dict[str, str] = chart.render(
                request["values"], name=request["name"], namespace=request["namespace"]
            )
            crds = {item["filename"]: item["data"] for item in chart.crds}
    except helm.HelmError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"manifests": manifests, "crds": crds}


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(render(request)))


if __name__ == "__main__":
    main()
