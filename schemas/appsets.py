"""App sets: turn one matching directory or file of a branch into an ordinary app.

A set's `template` holds app settings whose string values are Jinja templates. They are
rendered in Jinja's sandbox with undefined names as errors, so a template can read the
variables it is given (`path`, `basename`, `dirname`, a file's keys) and nothing else:
no attribute tricks, no imports, no file or network access. The keys a template may set
are derived from `AppConfig` itself, so a setting added to apps is a template key at once.

Everything here is pure: the syncers (which read the branch) and the configuration
loader (which checks templates before anything runs) share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError

from schemas.config import AppConfig, AppSetConfig
from schemas.events import AppDefinitionData, AppGenerated, AppRemoved, parse_event

SET_KEYS = frozenset({"repo", "branch"})
"""App keys that come from the set itself, never from its template."""

PATH_VARIABLES = ("path", "basename", "dirname")
"""What every template may use; a files generator adds `filename`, `file` and its keys."""


def template_keys() -> frozenset[str]:
    """The keys a template may set: every app setting but the set's own, plus `name`."""
    return frozenset(AppConfig.model_fields) - SET_KEYS | {"name"}


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; `key` is its dotted key path."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"template.{key}: {message}" if key else message)


def environment() -> SandboxedEnvironment:
    """The sandbox every template renders in: undefined names fail, nothing is escaped.

    Jinja's globals (`range`, `namespace`, `lipsum`, ...) are removed: a template sees its
    variables and nothing else, and a file key that is missing is an error, not a global
    of the same name.
    """
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.clear()
    return env


def _strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """Every string inside a template value, with the dotted key it sits under."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, Mapping):
        for sub, item in value.items():
            yield from _strings(item, f"{key}.{sub}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{key}.{index}")


def template_problems(app_set: AppSetConfig) -> list[TemplateProblem]:
    """What is wrong with a set's template before any repository is read.

    Unknown keys and syntax errors always; names no directories generator could supply,
    and values an app would refuse (tried with a sample directory), for `directories`.
    """
    problems: list[TemplateProblem] = []
    allowed = template_keys()
    for key in app_set.template:
        if key in SET_KEYS:
            problems.append(
                TemplateProblem(key, f"'{key}' is set on the app set, not its template")
            )
        elif key not in allowed:
            problems.append(TemplateProblem(key, f"unknown app setting '{key}'"))
    env = environment()
    for key, text in (p for k, v in app_set.template.items() for p in _strings(v, k)):
        try:
            parsed = env.parse(text)
        except TemplateSyntaxError as exc:
            problems.append(TemplateProblem(key, f"template syntax error: {exc.message}"))
            continue
        if app_set.directories is not None:
            unknown = sorted(meta.find_undeclared_variables(parsed) - set(PATH_VARIABLES))
            if unknown:
                names = ", ".join(unknown)
                problems.append(
                    TemplateProblem(
                        key,
                        f"undefined name(s) {names}: a directories generator gives "
                        f"{', '.join(PATH_VARIABLES)}",
                    )
                )
    if problems or app_set.directories is None:
        return problems
    sample = app_set.directories.include[0].replace("*", "example").replace("?", "x")
    try:
        render_app("set", app_set, path_variables(sample))
    except TemplateProblem as exc:
        problems.append(exc)
    return problems


def path_variables(path: str, *, filename: str | None = None) -> dict[str, Any]:
    """The variables of a generated app's directory: `path`, `basename`, `dirname`."""
    pure = PurePosixPath(path)
    found: dict[str, Any] = {
        "path": path,
        "basename": pure.name or ".",
        "dirname": str(pure.parent) if pure.name else ".",
    }
    if filename is not None:
        found["filename"] = filename
    return found


@dataclass(frozen=True)
class GeneratedApp:
    """One app a set generated: its name, its settings, and the path it came from."""

    name: str
    app: AppConfig
    source: str
    """The directory (or file) of the branch the app was generated from."""


class CompiledTemplate:
    """A set's template compiled once, rendered for every match of one generation.

    Compiling a Jinja template costs far more than rendering it; a set of 1,000 apps
    renders each of its strings 1,000 times. Strings without a `{` are kept as they are.
    """

    def __init__(self, set_name: str, app_set: AppSetConfig) -> None:
        self._set_name = set_name
        self._app_set = app_set
        env = environment()
        self._compiled = {key: self._compile(env, value) for key, value in app_set.template.items()}

    def _compile(self, env: SandboxedEnvironment, value: Any) -> Any:
        if isinstance(value, str):
            return env.from_string(value) if "{" in value else value
        if isinstance(value, Mapping):
            return {k: self._compile(env, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._compile(env, v) for v in value]
        return value

    def render(self, variables: Mapping[str, Any], *, source: str = "") -> GeneratedApp:
        """The app one directory or file makes; `TemplateProblem` names the template key."""
        rendered = {key: _render(value, key, variables) for key, value in self._compiled.items()}
        basename = variables.get("basename", "")
        name = str(rendered.pop("name", "") or f"{self._set_name}-{basename}")
        rendered.setdefault("path", str(variables.get("path", ".")))
        try:
            app = AppConfig.model_validate(
                {**rendered, "repo": self._app_set.repo, "branch": self._app_set.branch}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] != "missing" and isinstance(error.get("input"), str | int | bool):
                message += f" (rendered {error['input']!r})"
            raise TemplateProblem(key, message) from None
        return GeneratedApp(name, app, source or str(variables.get("path", ".")))


def _render(value: Any, key: str, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        try:
            return value.render(variables)
        except TemplateError as exc:
            raise TemplateProblem(key, str(exc.message or exc)) from None
    if isinstance(value, Mapping):
        return {k: _render(v, f"{key}.{k}", variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, f"{key}.{i}", variables) for i, v in enumerate(value)]
    return value


def render_app(
    set_name: str, app_set: AppSetConfig, variables: Mapping[str, Any], *, source: str = ""
) -> GeneratedApp:
    """The app one directory or file makes (compiling the template for this one call)."""
    return CompiledTemplate(set_name, app_set).render(variables, source=source)


class DefinitionTable:
    """The generated-apps topic folded into current definitions, one record at a time.

    Every reader (each syncer, the receiver, the command line) folds the same records in
    the same order (all records of one app name share a partition), with the same rules,
    so they all serve the same apps: a tombstone forgets a name; a configured app's name
    is never taken; and a name stays with the set that defined it first until that set
    removes it, so two sets generating one name cannot take it from each other (the
    second one reports the clash).
    """

    def __init__(self, configured: Iterable[str]) -> None:
        self.configured = frozenset(configured)
        self.generated: dict[str, AppDefinitionData] = {}
        """Current definitions of the generated apps, by app name."""
        self.removed: dict[str, AppDefinitionData] = {}
        """Last definitions of apps whose set no longer generates them."""

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Fold one record in; True when the set of served apps (or one's settings) changed."""
        if key is None:
            return False
        name = key.decode("utf-8", "replace")
        if value is None:
            self.removed.pop(name, None)
            return self.generated.pop(name, None) is not None
        try:
            event = parse_event(value)
        except ValidationError:
            return False
        if name in self.configured or not isinstance(event, AppGenerated | AppRemoved):
            return False
        held = self.generated.get(name)
        if held is not None and held.app_set != event.data.app_set:
            return False  # another set's clash: the name stays where it is
        if isinstance(event, AppGenerated):
            self.generated[name] = event.data
            self.removed.pop(name, None)
            return True
        self.removed[name] = event.data
        return self.generated.pop(name, None) is not None
