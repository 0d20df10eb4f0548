"""A generated app acts as the ServiceAccount its template names, exactly like a configured
app: the real API server's RBAC bounds what each directory of the monorepo may change."""

from __future__ import annotations

from schemas.events import SyncFailed, SyncSucceeded
from tests.appsets.conftest import MakeMonorepo
from tests.support.bed import unique_name
from tests.syncer.conftest import K8s, configmap
from tests.syncer.test_impersonation import team


async def test_a_generated_app_impersonates_the_account_of_its_template(
    monorepo: MakeMonorepo, k8s: K8s
) -> None:
    own, other = unique_name("team"), unique_name("other")
    account = await team(k8s, own)
    await team(k8s, other)
    world = await monorepo(
        services=["a"],
        app_set={
            "template": {"cluster": "dev", "namespace": own, "service_account": "deployer"},
        },
        files={"services/intruder/cm.yaml": configmap("sneaky", other)},
    )
    async with world.syncers():
        allowed = await world.outcome("svc-a")
        refused = await world.outcome("svc-intruder")
    assert isinstance(allowed, SyncSucceeded), allowed.data.error
    assert isinstance(refused, SyncFailed), refused
    (intrusion,) = refused.data.objects
    assert (intrusion.kind, intrusion.namespace, intrusion.name) == ("ConfigMap", other, "sneaky")
    assert intrusion.refused is not None and intrusion.refused.account == account
