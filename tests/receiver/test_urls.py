"""A payload selects a registered repository however either side writes its URL."""

from __future__ import annotations

import pytest

from receiver.urls import normalise_url


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/platform.git",
        "https://github.com/acme/platform",
        "https://github.com/acme/platform/",
        "https://GitHub.com/Acme/Platform.git",
        "https://github.com:443/acme/platform",
        "https://user:token@github.com/acme/platform.git",
        "http://github.com/acme/platform",
        "git@github.com:acme/platform.git",
        "git@github.com:/acme/platform.git",
        "ssh://git@github.com/acme/platform.git",
        "ssh://git@github.com:22/acme/platform",
        "git://github.com/acme/platform.git",
    ],
)
def test_every_way_of_writing_a_repository_url_names_the_same_repository(url: str) -> None:
    assert normalise_url(url) == "github.com/acme/platform"


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("ssh://git@gitlab.example.com:2222/g/sub/app.git", "gitlab.example.com:2222/g/sub/app"),
        ("http://127.0.0.1:8081/examples.git", "127.0.0.1:8081/examples"),
        ("http://[::1]:3000/org/repo", "[::1]:3000/org/repo"),
    ],
)  # fmt: skip
def test_non_default_ports_and_nested_groups_stay_part_of_the_identity(
    url: str, normalised: str
) -> None:
    assert normalise_url(url) == normalised


@pytest.mark.parametrize(
    "url", ["", "   ", "file:///srv/git/platform.git", "/srv/git/platform", "https://github.com/"]
)
def test_urls_that_name_no_remote_repository_select_nothing(url: str) -> None:
    assert normalise_url(url) is None
