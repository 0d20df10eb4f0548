"""Which registered repositories a push selects, and which of their apps must sync.

A payload's URLs only *select* among repositories registered in the configuration; the
receiver never fetches or trusts a URL from a payload. An app follows one branch and one
directory: when the push lists every changed file, apps whose directory none of them
touch are left alone; when the list is missing or incomplete the syncer decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from receiver.pushes import Push
from receiver.urls import normalise_url, without_credentials
from schemas.config import AppConfig, GitopsConfig
from schemas.types import AppName


@dataclass(frozen=True)
class Selection:
    """The registered repositories a payload named, by their shared normalised URL."""

    repo_url: str
    repositories: frozenset[str]


class Registry:
    """Registered repositories by normalised URL, and the apps following each of them."""

    def __init__(self, config: GitopsConfig) -> None:
        self._by_url: dict[str, set[str]] = {}
        for name, repo in config.repositories.items():
            key = normalise_url(repo.url)
            if key is not None:
                self._by_url.setdefault(key, set()).add(name)
        self._apps: dict[str, dict[AppName, AppConfig]] = {}
        self._configured = frozenset(config.apps)
        for app_name, app in sorted(config.apps.items()):
            self._apps.setdefault(app.repo, {})[AppName(app_name)] = app
        self._clone_urls = {
            name: without_credentials(repo.url) for name, repo in config.repositories.items()
        }

    def follow(self, name: str, app: AppConfig) -> None:
        """Follow a generated app (`receiver.generated`), or its new settings; a name a
        configured app has is never taken over."""
        if name in self._configured:
            return
        self.unfollow(name)
        self._apps.setdefault(app.repo, {})[AppName(name)] = app

    def unfollow(self, name: str) -> None:
        """Stop following a generated app; configured apps stay."""
        if name in self._configured:
            return
        for apps in self._apps.values():
            apps.pop(AppName(name), None)

    def select(self, urls: Iterable[str]) -> Selection | None:
        """The first of the payload's URLs that names a registered repository."""
        for url in urls:
            key = normalise_url(url)
            if key is not None and key in self._by_url:
                return Selection(key, frozenset(self._by_url[key]))
        return None

    def clone_url(self, repository: str) -> str:
        """The URL as configured (credentials left out), which is what the syncer fetches."""
        return self._clone_urls[repository]

    def following(self, push: Push, repositories: Iterable[str]) -> list[tuple[AppName, str]]:
        """Apps (with their repository) following the pushed branch of these repositories."""
        branch = push.branch
        if branch is None or push.deleted or push.after is None:
            return []
        return [
            (name, repo)
            for repo in sorted(repositories)
            for name, app in sorted(self._apps.get(repo, {}).items())
            if app.branch == branch
        ]

    def needing_sync(self, push: Push, repositories: Iterable[str]) -> list[tuple[AppName, str]]:
        """The following apps whose directory the push may have changed."""
        following = self.following(push, repositories)
        if push.changed_paths is None:
            return following
        changed = ChangedPaths(push.changed_paths)
        return [
            (name, repo)
            for name, repo in following
            if any(changed.touches(path) for path in self._inputs_of(name, repo))
        ]

    def _inputs_of(self, app: AppName, repo: str) -> list[str]:
        """Paths whose change can change the app's render.

        An explicit Kustomize app may pull bases from anywhere in the repository, so any
        change counts; a Helm app also reads its value files. An auto-detected overlay with
        bases outside its path is caught by the branch-head poll instead.
        """
        spec = self._apps[repo][app]
        if spec.source == "kustomize":
            return ["."]
        if spec.source == "helm" and spec.helm is not None:
            return [spec.path, *spec.helm.value_files]
        return [spec.path]


class ChangedPaths:
    """The files a push changed, and every directory holding one of them.

    One push to a monorepo can name thousands of files for thousands of apps; looking
    each app's directory up in a set keeps matching linear in files plus apps.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self._any = False
        self._within: set[str] = set()
        for path in paths:
            self._any = True
            parts = path.strip("/").split("/")
            self._within.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))

    def touches(self, app_path: str) -> bool:
        """Whether any changed file lies inside the app's directory ('.' is the whole
        repository)."""
        prefix = app_path.strip().strip("/")
        while prefix.startswith("./"):
            prefix = prefix[2:]
        prefix = prefix.rstrip("/")
        if prefix in ("", "."):
            return self._any
        return prefix in self._within
