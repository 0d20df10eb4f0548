"""Signature checks against the providers' documented vectors; rotation; replay window."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

from receiver.dedupe import DeliveryLedger
from receiver.signatures import SecretBook, hex_hmac_check, standard_webhooks_check, token_check

GITHUB_DOCS_SECRET = b"It's a Secret to Everybody"
GITHUB_DOCS_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_test_vector_verifies() -> None:
    book = SecretBook([("docs", GITHUB_DOCS_SECRET)])
    check = hex_hmac_check(b"Hello, World!", GITHUB_DOCS_SIGNATURE, prefix="sha256=")
    assert book.vouching(check) == {"docs"}


def test_any_of_a_repositorys_rotated_secrets_verifies() -> None:
    book = SecretBook([("platform", b"old"), ("platform", b"new"), ("other", b"x")])
    digest = hmac.new(b"new", b"body", hashlib.sha256).hexdigest()
    assert book.vouching(hex_hmac_check(b"body", digest)) == {"platform"}
    assert book.vouching(token_check("old")) == {"platform"}
    assert book.vouching(token_check("older")) == frozenset()


def test_a_shared_secret_vouches_for_every_repository_using_it() -> None:
    book = SecretBook([("a", b"shared"), ("b", b"shared")])
    assert book.vouching(token_check("shared")) == {"a", "b"}
    assert repr(book) == "SecretBook(1 secrets)"


def standard_headers(key: bytes, body: bytes, stamp: int) -> dict[str, str]:
    digest = hmac.new(key, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1,AAAA v1," + base64.b64encode(digest).decode(),
    }


def test_standard_webhooks_signature_verifies_within_five_minutes_only() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    secret = b"whsec_" + base64.b64encode(key)
    book = SecretBook([("gl", secret)])
    headers = standard_headers(key, b"{}", 1_700_000_000)
    assert book.vouching(standard_webhooks_check(headers, b"{}", now=1_700_000_299)) == {"gl"}
    assert book.vouching(standard_webhooks_check(headers, b"{}", now=1_700_000_301)) == set()
    assert book.vouching(standard_webhooks_check(headers, b"{ }", now=1_700_000_000)) == set()


async def test_delivery_ids_are_forgotten_after_the_window_and_memory_stays_bounded() -> None:
    now = [0.0]
    ledger: DeliveryLedger[str] = DeliveryLedger(
        timedelta(hours=1), max_entries=3, clock=lambda: now[0]
    )

    async def publish() -> str:
        return "ok"

    for key in ("a", "b", "c", "d"):
        await ledger.once(key, publish, timeout=1)
    assert len(ledger) == 3
    assert ledger.recorded("a") is None
    assert ledger.recorded("d") == "ok"
    now[0] = 3601.0
    assert ledger.recorded("d") is None
    assert len(ledger) == 0
