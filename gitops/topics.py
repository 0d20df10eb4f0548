"""Create the pipeline's topics when they are missing, before any part starts using them.

Brokers that auto-create topics do so with one partition, which would cap the syncers
at one useful member; creating them up front with `kafka.partitions` avoids that.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from schemas import ConfigUnusable, KafkaSettings, KafkaUnavailable, Topics

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}
"""The generated-apps topic is a table (latest definition per app), not a log."""
APP_STATUS_CONFIG = {**COMPACTED, "segment.ms": str(3600 * 1000)}
"""The app-status topic keeps the latest record per app; hour-long segments let the
broker compact it soon, so a syncer starting up reads about one record per app."""


class TopicSetupError(ConfigUnusable):
    """The broker answered but refused to create a topic (partitions, replication factor,
    permissions): a setting to change, not an outage."""


async def ensure_topics(
    settings: KafkaSettings, *, attempts: int = 5, wait: float | None = None
) -> list[str]:
    """Create missing topics; return the names created.

    Retries a broker that does not answer: `attempts` times, or for `wait` seconds when
    given (a service starting beside a broker that is still starting, as pods do). Raises
    `KafkaUnavailable` when no broker answered, `TopicSetupError` when one refused.
    """
    topics = Topics(settings.topic_prefix)
    started = time.monotonic()
    last: Exception | None = None
    attempt = 0
    while True:
        try:
            return await _create_missing(settings, topics)
        except (KafkaError, OSError) as exc:
            last = exc
        attempt += 1
        delay = min(2.0, 0.2 * 2**attempt)
        if wait is None:
            if attempt >= attempts:
                break
        else:
            left = wait - (time.monotonic() - started)
            if left <= 0:
                break
            delay = min(delay, left)
            log.warning(
                "Kafka at %s not answering (%s); retrying for %.0f s more (kafka.startup_timeout)",
                settings.bootstrap,
                _describe(last),
                left,
                extra={"bootstrap": settings.bootstrap, "attempt": attempt},
            )
        await asyncio.sleep(delay)
    raise KafkaUnavailable(settings.bootstrap, waited=wait, detail=_describe(last))


def _describe(exc: Exception | None) -> str:
    """What went wrong, without aiokafka's resolver tuples."""
    if isinstance(exc, KafkaConnectionError):
        return "no broker answered"
    return f"{type(exc).__name__}: {exc}" if exc is not None else "no answer"


async def _create_missing(settings: KafkaSettings, topics: Topics) -> list[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap, client_id=f"{settings.client_id}-admin"
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in topics.all() if name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        n,
                        settings.partitions,
                        settings.replication_factor,
                        topic_configs=_topic_configs(topics, n),
                    )
                    for n in missing
                ]
            )
            for name, code, message in _topic_errors(response):
                if code and code != TopicAlreadyExistsError.errno:
                    raise TopicSetupError(
                        f"the broker at {settings.bootstrap} refused to create topic {name}:"
                        f" {message or code} (check kafka.partitions, kafka.replication_factor"
                        " and this client's rights)"
                    )
        return missing
    finally:
        await admin.close()


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    errors = getattr(response, "topic_errors", [])
    result = []
    for entry in errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        result.append((str(name), int(code), message))
    return result


def _topic_configs(topics: Topics, name: str) -> dict[str, str]:
    if name == topics.app_status:
        return APP_STATUS_CONFIG
    return COMPACTED if name == topics.generated_apps else {}
