"""The contracts every part of gitops-pipeline shares: configuration and events.

`schemas` is the bottom layer: the receiver, the syncers and the command line all
speak these models, and the JSON Schema files under `schemas/json/` are generated
from them so that consumers in other languages can rely on the same shapes.
"""

from schemas.config import (
    AppConfig,
    ClusterConfig,
    GitopsConfig,
    KafkaSettings,
    ReceiverSettings,
    RepositoryConfig,
    SecretRef,
    SyncerSettings,
)
from schemas.errors import (
    ConfigError,
    ConfigIssue,
    ConfigUnusable,
    DependencyUnavailable,
    IdempotenceRefused,
    KafkaUnavailable,
    SessionTimeoutRefused,
    StartupError,
)
from schemas.events import (
    AnyEvent,
    DeadLetter,
    DriftDetected,
    PushReceived,
    SyncFailed,
    SyncRequested,
    SyncSkipped,
    SyncSucceeded,
    parse_event,
)
from schemas.loading import load_config, parse_config
from schemas.topics import Topics
from schemas.types import AppName, CommitSha, DeliveryId

__all__ = [
    "AnyEvent",
    "AppConfig",
    "AppName",
    "ClusterConfig",
    "CommitSha",
    "ConfigError",
    "ConfigIssue",
    "ConfigUnusable",
    "DeadLetter",
    "DeliveryId",
    "DependencyUnavailable",
    "DriftDetected",
    "GitopsConfig",
    "IdempotenceRefused",
    "KafkaSettings",
    "KafkaUnavailable",
    "PushReceived",
    "ReceiverSettings",
    "RepositoryConfig",
    "SecretRef",
    "SessionTimeoutRefused",
    "StartupError",
    "SyncFailed",
    "SyncRequested",
    "SyncSkipped",
    "SyncSucceeded",
    "SyncerSettings",
    "Topics",
    "load_config",
    "parse_config",
    "parse_event",
]
