"""Property: whatever arrives, never a 5xx, and never a 202 without a valid signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.service import Receiver
from tests.receiver import hosts

PROVIDERS = ["github", "gitlab", "gitea", "bitbucket"]
SAMPLES = [
    "github/push-branch-update.json",
    "github/ping.json",
    "gitlab/push.json",
    "gitea/push-2.json",
    "bitbucket-cloud/repo-push-branch-update.json",
]
SECRETS = ["hello-new", "diaspora-token", "gogits-secret", "foo-secret", "not-registered"]
HEADER_NAMES = [
    "X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", "X-Hub-Signature",
    "X-Gitlab-Event", "X-Gitlab-Token", "Idempotency-Key", "webhook-id", "webhook-timestamp",
    "webhook-signature", "X-Gitea-Event", "X-Gitea-Signature", "X-Forgejo-Signature",
    "X-Gitea-Delivery", "X-Event-Key", "X-Request-UUID", "Content-Type",
]  # fmt: skip
EVENTS = ["push", "ping", "Push Hook", "Tag Push Hook", "System Hook", "repo:push", ""]
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=20,
    )


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["sample", "mutated", "json", "bytes", "push-shaped"]))
    if kind == "bytes":
        return draw(st.binary(max_size=512))
    if kind == "json":
        return json.dumps(draw(json_values())).encode()
    sample = json.loads(hosts.sample(draw(st.sampled_from(SAMPLES))))
    if kind == "push-shaped":  # the right keys, random values
        return json.dumps({key: draw(json_values()) for key in sample}).encode()
    raw = hosts.sample(draw(st.sampled_from(SAMPLES)))
    if kind == "mutated":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.binary(min_size=0, max_size=4)) + raw[at + 1 :]
    return raw


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str], bool]:
    """A request and whether it carries a signature a registered secret made over its bytes."""
    provider = draw(st.sampled_from(PROVIDERS))
    body = draw(bodies())
    headers = {
        name: draw(header_value)
        for name in draw(st.lists(st.sampled_from(HEADER_NAMES), unique=True, max_size=6))
    }
    headers.setdefault("Content-Type", draw(st.sampled_from(["application/json", "text/plain"])))
    validly_signed = False
    if draw(st.booleans()):
        secret = draw(st.sampled_from(SECRETS))
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers.update(
            {
                "github": {"X-Hub-Signature-256": f"sha256={digest}"},
                "gitlab": {"X-Gitlab-Token": secret},
                "gitea": {"X-Gitea-Signature": digest},
                "bitbucket": {"X-Hub-Signature": f"sha256={digest}"},
            }[provider]
        )
        event_header = {
            "github": "X-GitHub-Event",
            "gitlab": "X-Gitlab-Event",
            "gitea": "X-Gitea-Event",
            "bitbucket": "X-Event-Key",
        }[provider]
        headers[event_header] = draw(st.sampled_from(EVENTS))
        validly_signed = secret != "not-registered"
    return provider, body, headers, validly_signed


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
async def test_random_requests_never_get_5xx_nor_202_without_a_valid_signature(
    receiver: Receiver,
    http: aiohttp.ClientSession,
    request: tuple[str, bytes, dict[str, str], bool],
) -> None:
    provider, body, headers, validly_signed = request
    async with http.post(f"{receiver.url}/hooks/{provider}", data=body, headers=headers) as r:
        status = r.status
        text = await r.text()
    assert status < 500, text
    assert "Traceback" not in text
    if status in (200, 202):
        assert validly_signed, (status, text)
