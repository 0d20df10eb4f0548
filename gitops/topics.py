"""Create the pipeline's topics when they are missing, before any part starts using them.

Brokers that auto-create topics do so with one partition, which would cap the syncers
at one useful member; creating them up front with `kafka.partitions` avoids that.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas import KafkaSettings, Topics

COMPACTED = {"cleanup.policy": "compact"}
"""The generated-apps topic is a table (latest definition per app), not a log."""
APP_STATUS_CONFIG = {**COMPACTED, "segment.ms": str(3600 * 1000)}
"""The app-status topic keeps the latest record per app; hour-long segments let the
broker compact it soon, so a syncer starting up reads about one record per app."""


class TopicSetupError(Exception):
    """The broker refused or did not answer topic creation."""


async def ensure_topics(settings: KafkaSettings, *, attempts: int = 5) -> list[str]:
    """Create missing topics; return the names created. Retries while the broker starts."""
    topics = Topics(settings.topic_prefix)
    last: Exception | None = None
    for attempt in range(attempts):
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
                        raise TopicSetupError(f"cannot create topic {name}: {message or code}")
            return missing
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        finally:
            await admin.close()
    raise TopicSetupError(f"broker {settings.bootstrap} did not answer topic creation: {last}")


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
