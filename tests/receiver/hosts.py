"""What the Git hosts send: sample payloads and the headers each provider signs them with.

Bodies are the exact bytes of the samples in `shared/webhook-samples/` (signatures cover
the bytes sent, so nothing is re-serialised).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "webhook-samples"


def sample(name: str) -> bytes:
    """`sample("github/push-branch-update.json")` -> the file's bytes."""
    return (SAMPLES / name).read_bytes()


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(
    body: bytes, secret: str, event: str = "push", delivery: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
    }


def gitlab(
    body: bytes, secret: str, event: str = "Push Hook", delivery: str | None = None
) -> dict[str, str]:
    key = delivery or str(uuid.uuid4())
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.5.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": key,
    }


def gitlab_signed(
    body: bytes,
    signing_token: str,
    event: str = "Push Hook",
    delivery: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """GitLab 19's Standard Webhooks signature (no X-Gitlab-Token)."""
    msg_id = delivery or str(uuid.uuid4())
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(signing_token.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "webhook-id": msg_id,
        "Idempotency-Key": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1,bm90LXRoaXMtb25l v1," + base64.b64encode(digest).decode(),
    }


def gitea(
    body: bytes,
    secret: str,
    event: str = "push",
    delivery: str | None = None,
    forgejo: bool = False,
) -> dict[str, str]:
    key = delivery or str(uuid.uuid4())
    signature = hex_hmac(secret, body)
    headers = {
        "Content-Type": "application/json",
        "X-Gitea-Event": event,
        "X-Gitea-Delivery": key,
        "X-Gitea-Signature": signature,
        "X-Hub-Signature-256": "sha256=" + signature,
    }
    if forgejo:
        headers = {k.replace("Gitea", "Forgejo"): v for k, v in headers.items()}
    return headers


def bitbucket(
    body: bytes, secret: str, event: str = "repo:push", delivery: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": event,
        "X-Request-UUID": delivery or str(uuid.uuid4()),
        "X-Hook-UUID": "{4a5d0e0c-1f7b-4c4e-8a88-6f7f0c8f0d7e}",
        "X-Attempt-Number": "1",
        "X-Hub-Signature": "sha256=" + hex_hmac(secret, body),
    }
