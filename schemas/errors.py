"""Configuration errors that point at the file, line and key a user has to fix."""

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class ConfigIssue:
    """One thing wrong with a configuration file."""

    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised with every issue found, not only the first, so one edit fixes them all."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class IdempotenceRefused(Exception):
    """The broker refused the idempotent producer `kafka.idempotence: true` asks for.

    A configuration error, not an outage: retrying cannot help, so the receiver, the
    syncer and the notifier stop with this text (exit 2) instead of waiting for a broker
    that will never say yes. Tansu, brokers before Kafka 0.11 and brokers that deny this client the
    IdempotentWrite permission refuse; `kafka.idempotence: false` is the fix for them.
    """

    def __init__(self, bootstrap: str, answer: str) -> None:
        self.bootstrap = bootstrap
        self.answer = answer
        """What the broker said to InitProducerId (the client library's error name)."""
        super().__init__(
            f"kafka.idempotence: the broker at {bootstrap} refused an idempotent producer"
            f" (InitProducerId answered {answer}); set 'kafka.idempotence: false' for this broker"
        )


class SessionTimeoutRefused(Exception):
    """The broker refused the session timeout a member's group settings ask for.

    Brokers bound it by `group.min.session.timeout.ms` and `group.max.session.timeout.ms`
    (6 s and 30 min on Apache Kafka unless its operator changed them; Tansu accepts any).
    A configuration error like `IdempotenceRefused`: the syncer or the notifier stops with
    this text (exit 2) instead of ending in the client library's traceback.
    """

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        session_timeout: timedelta,
        *,
        setting: str,
    ) -> None:
        self.bootstrap = bootstrap
        self.session_timeout = session_timeout
        self.setting = setting
        """The setting to change, e.g. `syncer.session_timeout`."""
        seconds = f"{session_timeout.total_seconds():g}s"
        super().__init__(
            f"{setting}: the broker at {bootstrap} refused {seconds} for consumer"
            f" group {group_id} (outside its group.min.session.timeout.ms .."
            " group.max.session.timeout.ms, 6s .. 30min on Apache Kafka by default);"
            " choose a session timeout inside the broker's bounds"
        )


EXIT_CONFIG = 2
"""Exit code of a configuration a user has to edit (retrying cannot help)."""
EXIT_UNAVAILABLE = 3
"""Exit code of a dependency that did not answer (retrying later may help)."""


class StartupError(Exception):
    """A command cannot do its work; the message names what failed and how to fix it.

    The command line prints it (the services log it as one JSON line) and exits with
    `exit_code`, never with a traceback.
    """

    exit_code = 1


class ConfigUnusable(StartupError):
    """Something the configuration points at cannot be used as it is (a kubeconfig file,
    a topic the broker refuses to create): an edit fixes it, a restart does not."""

    exit_code = EXIT_CONFIG


class DependencyUnavailable(StartupError):
    """A broker, API server or Git host did not answer: nothing to edit, unless the
    address itself is wrong; a pod restarting later may succeed."""

    exit_code = EXIT_UNAVAILABLE


class KafkaUnavailable(DependencyUnavailable):
    """No broker of `kafka.bootstrap` answered within `waited` seconds."""

    def __init__(self, bootstrap: str, *, waited: float | None, detail: str) -> None:
        self.bootstrap = bootstrap
        self.waited = waited
        after = f" after {waited:g} s" if waited else ""
        super().__init__(
            f"Kafka at {bootstrap} unreachable{after} ({detail}); check kafka.bootstrap"
            " (env GITOPS_KAFKA_BOOTSTRAP overrides it) and that the broker is up"
        )
