"""The command line's one conversion of a broker that does not answer.

aiokafka says `KafkaConnectionError: Unable to bootstrap from [('127.0.0.1', 1,
<AddressFamily.AF_INET: 2>)]` from whichever client met the outage first (an admin
client, a producer, a consumer); every command that talks to Kafka runs under
`kafka_reachable`, so a user sees `KafkaUnavailable` naming the address and the key
instead, and the command exits 3.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka.errors import KafkaConnectionError

from schemas import KafkaSettings, KafkaUnavailable

T = TypeVar("T")


async def kafka_reachable(settings: KafkaSettings, part: Coroutine[Any, Any, T]) -> T:
    """`part`'s result; `KafkaUnavailable` in place of aiokafka's bootstrap failure."""
    try:
        return await part
    except KafkaConnectionError as exc:
        raise KafkaUnavailable(
            settings.bootstrap, waited=None, detail="no broker answered"
        ) from exc
