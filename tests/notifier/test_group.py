"""Notifiers scale as a consumer group: members share the apps, a leaving member hands over."""

from __future__ import annotations

from tests.notifier.conftest import notifier_bench, running, sha, status_rule
from tests.support.bed import RealKafka
from tests.support.fakeapis import FakeApi, states

APPS = [f"app{i}" for i in range(8)]


async def test_two_members_share_the_apps_and_one_leaving_hands_its_apps_over(
    kafka: RealKafka, github: FakeApi
) -> None:
    b = await notifier_bench(kafka, [status_rule(github, on=["failed", "succeeded"])], apps=APPS)
    first = await running(b.config, "first")
    second = await running(b.config, "second")
    try:
        await first.joined()
        before = {app: sha() for app in APPS}
        requests = await b.requests(before.items())
        await b.outcomes([(r, "succeeded", None) for r in requests])
        await github.wait_for(
            lambda a: all(states(a, c, f"gitops/{app}") == ["success"] for app, c in before.items())
        )
        await second.stop()  # leaves the group: its partitions move to the first member
        after = {app: sha() for app in APPS}
        requests = await b.requests(after.items())
        await b.outcomes([(r, "failed", "boom") for r in requests])
        await github.wait_for(
            lambda a: all(states(a, c, f"gitops/{app}") == ["failure"] for app, c in after.items()),
            timeout=60,
        )
    finally:
        await second.stop()
        await first.stop()
    assert github.rejected == []
    delivered = first.metrics.deliveries.labels(provider="github", result="delivered")._value.get()
    shared = second.metrics.deliveries.labels(provider="github", result="delivered")._value.get()
    assert shared >= 1, "the second member never owned an app"
    assert delivered + shared >= 2 * len(APPS)  # a handover may repeat a status (same state)
    assert delivered >= len(APPS), "the first member did not take the second's apps over"
