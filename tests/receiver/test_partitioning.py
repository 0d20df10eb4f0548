"""Keyed messages land on the partition Kafka's default partitioner picks for the key."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from receiver.publishing import KeyPartitioner

KEYS = [
    b"github.com/codertocat/hello-world",
    b"hello-web",
    b"",
    "caf\u00e9-app".encode(),
    bytes(range(256)),
]


@pytest.mark.parametrize("partitions", [1, 3, 12, 50])
def test_every_key_goes_where_the_default_partitioner_sends_it(partitions: int) -> None:
    ours, reference = KeyPartitioner(), DefaultPartitioner()
    all_partitions = list(range(partitions))
    for _ in range(2):  # the second round is answered from the remembered hashes
        for key in KEYS + [f"app-{n}".encode() for n in range(200)]:
            assert ours(key, all_partitions, all_partitions) == reference(
                key, all_partitions, all_partitions
            )


def test_more_keys_than_remembered_still_partition_the_same() -> None:
    ours, reference = KeyPartitioner(), DefaultPartitioner()
    all_partitions = list(range(12))
    for n in range(KeyPartitioner.MAX_KEYS + 50):
        key = f"key-{n}".encode()
        assert ours(key, all_partitions, []) == reference(key, all_partitions, [])


def test_unkeyed_messages_go_to_an_available_partition() -> None:
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2
