"""A seeded generator of hostile webhook requests, each knowing what it is and what it may get.

Every case is a genuine-looking delivery with one thing wrong (or nothing wrong, as
controls). `authorized` says whether a secret registered for the repository the payload
names signed these exact bytes: only such deliveries may ever reach a topic.
"""

from __future__ import annotations

import json
import random
import urllib.parse
import uuid
from dataclasses import dataclass, field

from tests.security import webhooks
from tests.security.webhooks import BY_PROVIDER, PROVIDERS, REPOS, UNSIGNED, Repo

Header = tuple[str, str]

# Look-alikes of a registered `https://<host>/<owner>/<name>`: none of them is that repository.
LOOKALIKES = (
    "https://{host}/{owner}/{name}x",
    "https://{host}/{owner}/{name}-evil",
    "https://{host}/{owner}/{name_trimmed}",
    "https://{host}/{owner}-evil/{name}",
    "https://{host}/{owner}/{name_underscored}",
    "https://{host}@evil.example/{owner}/{name}",
    "https://{host}:443@evil.example/{owner}/{name}",
    "https://evil.example/{host}/{owner}/{name}",
    "https://{host}.evil.example/{owner}/{name}",
    "https://{host}./{owner}/{name}",
    "https://{host}:8443/{owner}/{name}",
    "https://{host_homoglyph}/{owner}/{name}",
    "https://{host_punycode}/{owner}/{name}",
    "https://{host_dotted_i}/{owner}/{name}",
    "https://{host_fullwidth}/{owner}/{name}",
    "https://{host}/{owner}/{name_homoglyph}",
    "https://{host}/{owner}/{name}/../../evil/{name}",
    "https://{host}/{owner}/{name}%2F..%2Fevil",
    "https://{host}/{owner}/{name}.git.evil",
    "git@evil.example:{owner}/{name}.git",
    "ssh://git@{host}.evil.example/{owner}/{name}.git",
    "file:///srv/git/{host}/{owner}/{name}.git",
    "https://{host}/{owner}%2F{name}",
    "https://{host}/{owner}/{name}\u200b",
)
# Other spellings of the same repository: the receiver matches these (by design).
EQUIVALENT_FORMS = (
    "https://{host_upper}/{owner}/{name}",
    "https://{host}/{owner}/{name}.git",
    "https://{host}:443/{owner}/{name}/",
    "git@{host}:{owner}/{name}.git",
    "ssh://git@{host}/{owner}/{name}",
    "https://user:tok@{host}/{owner}/{name}",
)
_HOMOGLYPHS = {"i": "\u0456", "o": "\u043e", "a": "\u0430", "e": "\u0435", "c": "\u0441"}
CONTENT_TYPES = (
    "text/plain",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "application/jsonx",
    "json",
)


def _homoglyph(text: str) -> str:
    for plain, glyph in _HOMOGLYPHS.items():
        if plain in text:
            return text.replace(plain, glyph, 1)
    return text + "\u0430"


def url_forms(repo: Repo, template: str) -> str:
    owner, name = repo.path.split("/", 1)
    host = repo.host
    return template.format(
        host=host,
        owner=owner,
        name=name,
        name_trimmed=name[:-1],
        name_underscored=name.replace("-", "_") if "-" in name else name + "_",
        name_homoglyph=_homoglyph(name),
        host_homoglyph=_homoglyph(host),
        host_punycode=_homoglyph(host).encode("idna").decode(),
        host_dotted_i=host.replace("i", "\u0130", 1) if "i" in host else "\u0130" + host,
        host_fullwidth="".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in host),
        host_upper=host.upper(),
    )


@dataclass
class Case:
    """One request and what the receiver may answer to it."""

    kind: str
    provider: str
    body: bytes
    headers: list[Header]
    expect: frozenset[int]
    delivery: str | None = None
    authorized: bool = False
    """A registered secret of the repository the payload names signed these bytes."""
    repo: Repo | None = None
    chunked: bool = False
    replay_of: Case | None = field(default=None, repr=False)


class Generator:
    """`Generator(seed).cases(n)`: a reproducible mix of every hostile kind and controls."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent_valid: list[Case] = []

    def _delivery(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _genuine(
        self, provider: str, *, url: str | None = None, branch: str = "main"
    ) -> tuple[Repo, bytes]:
        repo = BY_PROVIDER[provider]
        after = f"{self.rng.getrandbits(160):040x}"
        payload = webhooks.push_payload(provider, url or repo.url, branch=branch, after=after)
        return repo, webhooks.encode(payload)

    def _signed(
        self,
        kind: str,
        provider: str,
        body: bytes,
        repo: Repo,
        expect: set[int],
        *,
        authorized: bool,
        secret: str | None = None,
        content_type: str = "application/json",
        event: str | None = None,
    ) -> Case:
        delivery = self._delivery()
        headers = webhooks.headers(
            provider,
            body,
            secret=secret or self.rng.choice(repo.secrets),
            delivery=delivery,
            content_type=content_type,
            event=event,
        )
        return Case(kind, provider, body, headers, frozenset(expect), delivery, authorized, repo)

    # -- the kinds ------------------------------------------------------------------------

    def valid(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        case = self._signed("valid (control)", provider, body, repo, {202}, authorized=True)
        self.sent_valid.append(case)
        return case

    def valid_form(self, provider: str) -> Case:
        if provider not in ("github", "gitea"):
            return self.valid(provider)
        repo, body = self._genuine(provider)
        form = urllib.parse.urlencode({"payload": body.decode()}).encode()
        case = self._signed(
            "valid form-encoded (control)",
            provider,
            form,
            repo,
            {202},
            authorized=True,
            content_type="application/x-www-form-urlencoded",
        )
        self.sent_valid.append(case)
        return case

    def equivalent_url(self, provider: str) -> Case:
        repo = BY_PROVIDER[provider]
        url = url_forms(repo, self.rng.choice(EQUIVALENT_FORMS))
        _, body = self._genuine(provider, url=url)
        case = self._signed(
            "same repository, other URL form (control)", provider, body, repo, {202},
            authorized=True,
        )  # fmt: skip
        self.sent_valid.append(case)
        return case

    def unfollowed_branch(self, provider: str) -> Case:
        repo, body = self._genuine(provider, branch=f"feature-{self.rng.randrange(10**6)}")
        return self._signed("branch no app follows", provider, body, repo, {200}, authorized=True)

    def ping(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        event = {"github": "ping", "gitlab": "Note Hook", "gitea": "issues"}.get(
            provider, "repo:fork"
        )
        return self._signed("other event type", provider, body, repo, {200}, authorized=True,
                            event=event)  # fmt: skip

    def replay(self, provider: str) -> Case:
        if not self.sent_valid:
            return self.valid(provider)
        original = self.rng.choice(self.sent_valid)
        return Case(
            "replayed delivery (same bytes)",
            original.provider,
            original.body,
            list(original.headers),
            frozenset({202}),
            original.delivery,
            True,
            original.repo,
            replay_of=original,
        )

    def replay_new_body(self, provider: str) -> Case:
        """Same delivery id, new (validly signed) content: still published only once."""
        if not self.sent_valid:
            return self.valid(provider)
        original = self.rng.choice(self.sent_valid)
        assert original.repo is not None and original.delivery is not None
        _, body = self._genuine(original.provider)
        headers = webhooks.headers(
            original.provider, body, secret=original.repo.secrets[0], delivery=original.delivery
        )
        return Case(
            "replayed delivery id, other body",
            original.provider,
            body,
            headers,
            frozenset({202}),
            original.delivery,
            True,
            original.repo,
            replay_of=original,
        )

    def missing_signature(self, provider: str) -> Case:
        _, body = self._genuine(provider)
        delivery = self._delivery()
        headers = webhooks.headers(provider, body, secret=None, delivery=delivery)
        return Case("missing signature", provider, body, headers, frozenset({401}), delivery)

    def wrong_signature(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        case = self._signed("wrong signature", provider, body, repo, {401}, authorized=False)
        name = webhooks.SIGNATURE_HEADER[provider]
        good = dict(case.headers)[name]
        how = self.rng.randrange(6)
        if how == 0:  # another key
            bad = webhooks.signature(provider, "not-the-secret", body)
        elif how == 1:  # the right key over other bytes (GitLab: the token in other case)
            bad = webhooks.signature(provider, repo.secrets[0], body + b" ")
            if provider == "gitlab":
                bad = repo.secrets[0].swapcase()
        elif how == 2:  # one character flipped
            at = self.rng.randrange(len(good))
            bad = good[:at] + ("0" if good[at] != "0" else "1") + good[at + 1 :]
        elif how == 3:  # truncated
            bad = good[: self.rng.randrange(1, len(good))]
        elif how == 4:  # wrong algorithm prefix / empty
            bad = "sha1=" + good.removeprefix("sha256=") if provider != "gitlab" else " "
        else:  # the secret's prefix only, or a prefix of the token
            bad = good[: len(good) // 2] if provider == "gitlab" else "sha256="
        case.headers = [(k, bad if k == name else v) for k, v in case.headers]
        return case

    def duplicated_signature(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        case = self._signed("duplicated signature headers", provider, body, repo, {202, 401},
                            authorized=True)  # fmt: skip
        name = webhooks.SIGNATURE_HEADER[provider]
        bad = webhooks.signature(provider, "attacker-secret", body)
        good = [(k, v) for k, v in case.headers if k == name]
        rest = [(k, v) for k, v in case.headers if k != name]
        pair = [(name, bad), *good] if self.rng.random() < 0.5 else [*good, (name, bad)]
        case.headers = rest + pair
        if pair[0][1] == bad:
            case.expect = frozenset({401})  # only the first header counts
        return case

    def cross_repository_signature(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        other = self.rng.choice([r for r in REPOS if r is not repo])
        secret = self.rng.choice(other.secrets)
        return self._signed("signed with another repository's secret", provider, body, repo,
                            {401}, authorized=False, secret=secret)  # fmt: skip

    def unsigned_repository(self, provider: str) -> Case:
        """A repository registered without a secret: nobody can sign for it."""
        if provider not in ("github", "gitea"):
            provider = "github"
        _, body = self._genuine(provider, url=UNSIGNED.url)
        secret = self.rng.choice([*webhooks.ALL_SECRETS, "", "guess"])
        case = self._signed("repository without a secret", provider, body,
                            BY_PROVIDER[provider], {401}, authorized=False,
                            secret=secret or "x")  # fmt: skip
        return case

    def lookalike(self, provider: str) -> Case:
        repo = BY_PROVIDER[provider]
        url = url_forms(repo, self.rng.choice(LOOKALIKES))
        _, body = self._genuine(provider, url=url)
        if provider == "bitbucket":  # selected by its web link alone, the look-alike
            payload = json.loads(body)
            del payload["repository"]["full_name"]
            body = webhooks.encode(payload)
        # Signed with the genuine repository's secret: still not that repository, so it is
        # answered as an unregistered one (200, ignored) and nothing is published.
        return self._signed("look-alike repository URL", provider, body, repo, {200},
                            authorized=False)  # fmt: skip

    def unregistered(self, provider: str) -> Case:
        repo = BY_PROVIDER[provider]
        url = f"https://{repo.host}/someone/else-{self.rng.randrange(10**6)}.git"
        _, body = self._genuine(provider, url=url)
        return self._signed("unregistered repository, attacker's secret", provider, body, repo,
                            {401}, authorized=False, secret="attacker-secret")  # fmt: skip

    def truncated(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        cut = body[: self.rng.randrange(0, len(body) - 1)]
        if provider != "gitlab" and self.rng.random() < 0.5:
            # Signed over the full body, sent truncated (GitLab's token does not sign bytes).
            case = self._signed("truncated body", provider, body, repo, {401}, authorized=False)
            case.body = cut
            return case
        return self._signed("truncated body, signed as sent", provider, cut, repo, {400},
                            authorized=True)  # fmt: skip

    def huge(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        size = self.rng.randrange(70_000, 200_000)
        payload = json.loads(body)
        payload["padding"] = "x" * size
        big = webhooks.encode(payload)
        case = self._signed("huge body", provider, big, repo, {413}, authorized=True)
        case.chunked = self.rng.random() < 0.5  # no Content-Length: the limit applies while reading
        return case

    def deep_nesting(self, provider: str) -> Case:
        repo, _ = self._genuine(provider)
        depth = self.rng.randrange(2_000, 9_000)  # stays under max_body_bytes
        kind = self.rng.randrange(3)
        if kind == 0:
            body = b"[" * depth + b"]" * depth
        elif kind == 1:
            body = b'{"a":' * depth + b"1" + b"}" * depth
        else:
            payload = webhooks.push_payload(provider, repo.url)
            inner = '{"x":' * depth + "1" + "}" * depth
            body = webhooks.encode(payload)[:-1] + b',"deep":' + inner.encode() + b"}"
        # Not a push (0, 1): refused. A genuine push carrying one deep field (2): a parser may
        # refuse the depth (400) or read it and accept the push (202); never a 5xx.
        expect = {400} if kind < 2 else {400, 202}
        return self._signed("deeply nested JSON", provider, body, repo, expect, authorized=True)

    def invalid_utf8(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        at = self.rng.randrange(len(body))
        bad = (
            body[:at]
            + self.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])
            + body[at:]
        )
        return self._signed("invalid UTF-8", provider, bad, repo, {400}, authorized=True)

    def wrong_content_type(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        content_type = self.rng.choice(CONTENT_TYPES)
        if provider in ("gitlab", "bitbucket") and self.rng.random() < 0.3:
            content_type = "application/x-www-form-urlencoded"  # only GitHub and Gitea post forms
        return self._signed("wrong content type", provider, body, repo, {415}, authorized=True,
                            content_type=content_type)  # fmt: skip

    def bad_delivery_id(self, provider: str) -> Case:
        repo, body = self._genuine(provider)
        case = self._signed("over-long delivery id", provider, body, repo, {400}, authorized=True)
        name = webhooks.DELIVERY_HEADER[provider]
        long_id = "d" * self.rng.randrange(201, 4000)
        case.headers = [(k, long_id if k == name else v) for k, v in case.headers]
        case.delivery = long_id
        return case

    def garbage(self, provider: str) -> Case:
        body = self.rng.randbytes(self.rng.randrange(0, 2048))
        headers: list[Header] = [("Content-Type", "application/json")]
        name = webhooks.SIGNATURE_HEADER[provider]
        headers.append((name, f"sha256={self.rng.getrandbits(256):064x}"))
        headers.append(webhooks.EVENT_HEADER[provider])
        return Case("random bytes", provider, body, headers, frozenset({400, 401}))

    KINDS: tuple[tuple[str, int], ...] = (
        ("valid", 12),
        ("valid_form", 3),
        ("equivalent_url", 4),
        ("unfollowed_branch", 3),
        ("ping", 2),
        ("replay", 5),
        ("replay_new_body", 3),
        ("missing_signature", 6),
        ("wrong_signature", 10),
        ("duplicated_signature", 5),
        ("cross_repository_signature", 5),
        ("unsigned_repository", 3),
        ("lookalike", 10),
        ("unregistered", 4),
        ("truncated", 6),
        ("huge", 1),
        ("deep_nesting", 3),
        ("invalid_utf8", 4),
        ("wrong_content_type", 5),
        ("bad_delivery_id", 2),
        ("garbage", 4),
    )

    def cases(self, count: int) -> list[Case]:
        names = [name for name, _ in self.KINDS]
        weights = [weight for _, weight in self.KINDS]
        found = []
        for _ in range(count):
            kind = self.rng.choices(names, weights)[0]
            provider = self.rng.choice(PROVIDERS)
            found.append(getattr(self, kind)(provider))
        return found
