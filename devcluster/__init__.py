"""devcluster: a Kubernetes API emulator for tests and the embedded default cluster.

``DevCluster`` serves discovery, CRUD, server-side apply, watches and status over real
HTTP, so ``kubernetes_asyncio`` and ``kubectl`` talk to it as to kube-apiserver.
"""

from devcluster.controllers import ControllerSettings
from devcluster.faults import Fault, Faults
from devcluster.server import DevCluster

__all__ = ["ControllerSettings", "DevCluster", "Fault", "Faults"]
