"""A notifier process SIGKILLed mid-burst loses nothing and never contradicts an outcome.

A burst of requests and outcomes for many apps and commits goes through the bed's Kafka to
a real `python -m gitops notifier` process; it is SIGKILLed once part of the statuses went
out, and a second process of the same group takes over. For every commit and context the
GitHub-shaped API must end at the outcome's state, every failed outcome must have reached
the chat, and once an outcome's state was sent nothing else may follow for that commit and
context: no `pending` after it, no other outcome state.
"""

from __future__ import annotations

from pathlib import Path

from syncer.reporting import OutcomeKind
from tests.notifier.conftest import (
    chat_rule,
    notifier_bench,
    sha,
    start_notifier,
    status_rule,
    write_config,
)
from tests.support.bed import RealKafka
from tests.support.fakeapis import FakeApi, states

APPS = [f"app{i:02d}" for i in range(8)]
ROUNDS = 3
FINAL = {"succeeded": "success", "failed": "failure"}


async def test_sigkill_mid_burst_loses_no_notification_and_never_flips_a_state(
    kafka: RealKafka, github: FakeApi, slack: FakeApi, tmp_path: Path
) -> None:
    github.delay = 0.05
    rules = [
        status_rule(github, on=["requested", "succeeded", "failed"]),
        chat_rule(slack, slack.root + slack.operations[0].template, on=["failed"]),
    ]
    b = await notifier_bench(kafka, rules, apps=APPS, rate_limits={"github": 8, "slack": 50})
    path = write_config(b.config, tmp_path / "gitops.yaml")
    first = await start_notifier(path, "first", tmp_path)
    second = None
    expected: dict[str, str] = {}
    failed_commits: set[str] = set()
    try:
        await first.wait_for("partitions assigned")
        for round_ in range(ROUNDS):
            pairs = [(app, sha()) for app in APPS]
            requests = await b.requests(pairs)
            kinds: list[OutcomeKind] = [
                "failed" if (i + round_) % 3 == 0 else "succeeded" for i in range(len(APPS))
            ]
            await b.outcomes(
                [
                    (r, k, "boom" if k == "failed" else None)
                    for r, k in zip(requests, kinds, strict=True)
                ]
            )
            for (_, commit), kind in zip(pairs, kinds, strict=True):
                expected[commit] = FINAL[kind]
                if kind == "failed":
                    failed_commits.add(commit)
        await github.wait_for(lambda a: len(a.accepted()) >= 10, timeout=60)
        killed_after = len(github.accepted())
        await first.kill()
        second = await start_notifier(path, "second", tmp_path)

        def settled(api: FakeApi) -> bool:
            return all(
                states(api, commit, f"gitops/{app}")[-1:] == [state]
                for commit, state in expected.items()
                for app in [_app_of(api, commit)]
            )

        await github.wait_for(settled, timeout=90, what="every final state")
        await slack.wait_for(
            lambda a: (
                failed_commits <= {_commit_in(r.body["text"], failed_commits) for r in a.accepted()}
            ),
            timeout=60,
            what="a message for every failed commit",
        )
    finally:
        await first.stop()
        if second is not None:
            await second.stop()

    assert github.rejected == [] and slack.rejected == []
    assert killed_after < len(expected) * 2, "the kill came after the burst was delivered"
    for commit, final in expected.items():
        seen = states(github, commit, f"gitops/{_app_of(github, commit)}")
        after_final = seen[seen.index(final) :]
        assert set(after_final) == {final}, f"{commit[:7]}: {seen}"
    print(
        f"\nkilled after {killed_after} of {len(github.accepted())} statuses; "
        f"{len(slack.accepted())} chat messages for {len(failed_commits)} failed outcomes"
    )


def _app_of(api: FakeApi, commit: str) -> str:
    for r in api.received:
        if r.params.get("sha") == commit:
            return str(r.body["context"]).removeprefix("gitops/")
    return "?"


def _commit_in(text: str, commits: set[str]) -> str:
    return next((c for c in commits if c[:7] in text), "")
