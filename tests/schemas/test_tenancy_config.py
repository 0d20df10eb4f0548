"""The tenancy keys load as users write them, and their mistakes name the line."""

from __future__ import annotations

import pytest

from schemas import ConfigError, parse_config

BASE = """\
clusters:
  here: {in_cluster: true, default_service_account: gitops-deployer}
repositories:
  platform: {url: https://github.com/acme/platform.git}
apps:
  shop:
    repo: platform
    cluster: here
    namespace: shop
    service_account: SA
    decryption: DECRYPTION
"""


def config(
    service_account: str = "deployer", decryption: str = "{provider: sops, secret: k}"
) -> str:
    return BASE.replace("SA", service_account).replace("DECRYPTION", decryption)


def test_both_account_forms_and_both_key_sources_load_and_keys_are_read_only_at_sync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UNSET_AGE_KEYS", raising=False)
    loaded = parse_config(
        config("billing/deployer", "{provider: sops, keys: {env: UNSET_AGE_KEYS}}")
    )
    app = loaded.apps["shop"]
    assert app.service_account == "billing/deployer"
    assert loaded.clusters["here"].default_service_account == "gitops-deployer"
    assert app.decryption is not None and app.decryption.keys is not None
    assert app.decryption.keys.env == "UNSET_AGE_KEYS"
    assert parse_config(config()).apps["shop"].decryption.secret == "k"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("service_account", "decryption", "expected"),
    [
        (
            "team/a/b",
            "{provider: sops, secret: k}",
            "g.yaml:10: apps.shop.service_account: a ServiceAccount is NAME (in the app's "
            "namespace) or NAMESPACE/NAME, in lowercase letters, digits and '-' (got 'team/a/b')",
        ),
        (
            "deployer",
            "{provider: sops, secret: k, keys: {env: X}}",
            "g.yaml:11: apps.shop.decryption: decryption needs exactly one of 'secret' or 'keys'",
        ),
        (
            "deployer",
            "{provider: vault, secret: k}",
            "g.yaml:11: apps.shop.decryption.provider: Input should be 'sops' (got 'vault')",
        ),
    ],
)
def test_a_mistake_names_the_key_and_line(
    service_account: str, decryption: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(service_account, decryption), source="g.yaml")
    assert str(caught.value) == expected
