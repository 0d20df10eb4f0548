"""Index a received pack in one pass: the CPU half of a fetch, where dulwich spends its time.

A pack is a stream of zlib-compressed objects, most of them deltas against an earlier
object. Its index maps each object's id (the hash of its resolved content) to its offset.
dulwich's `PackIndexer` inflates every object twice (once to find where each ends, once
more to resolve it); this inflates each once, resolving deltas against recently resolved
bases kept in a byte-bounded LRU. A base that fell out of the LRU is re-read from the pack,
so memory stays bounded however large the pack is. The rare pack that deltas against an
object appearing later in the same pack is handed back to dulwich's indexer.
"""

from __future__ import annotations

import binascii
import hashlib
import mmap
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import BinaryIO

from dulwich.errors import ApplyDeltaError, ChecksumMismatch
from dulwich.object_format import ObjectFormat
from dulwich.objects import Blob, ObjectID, RawObjectID, object_header
from dulwich.pack import (
    OFS_DELTA,
    REF_DELTA,
    PackData,
    PackIndexer,
    apply_delta,
    unpack_object_at,
)

IndexEntry = tuple[bytes, int, int | None]
"""(raw object id, offset in the pack, crc32 of its packed bytes), as pack indexes store."""

ResolveExternal = Callable[[RawObjectID | ObjectID], tuple[int, bytes]]

_HEADER_SIZE = 12
_CHECKSUM_CHUNK = 1 << 20


class _ForwardReference(Exception):
    """A delta names a base stored later in the pack; the one-pass walk cannot resolve it."""


class _Bases:
    """Resolved objects by pack offset, least recently used dropped past `budget` bytes."""

    def __init__(self, budget: int) -> None:
        self._items: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._budget = budget
        self._size = 0

    def get(self, offset: int) -> tuple[int, bytes] | None:
        found = self._items.get(offset)
        if found is not None:
            self._items.move_to_end(offset)
        return found

    def put(self, offset: int, value: tuple[int, bytes]) -> None:
        self._items[offset] = value
        self._size += len(value[1])
        while self._size > self._budget and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self._size -= len(dropped)


class _Walk:
    """State of one indexing pass over a mapped pack."""

    def __init__(
        self,
        contents: mmap.mmap,
        object_format: ObjectFormat,
        resolve_external: ResolveExternal,
        cache_bytes: int,
    ) -> None:
        self.contents = contents
        self.hash_func = object_format.hash_func
        self.resolve_external = resolve_external
        self.bases = _Bases(cache_bytes)
        self.offsets: dict[bytes, int] = {}
        self.external: set[RawObjectID] = set()

    def run(self, count: int) -> list[IndexEntry]:
        entries: list[IndexEntry] = []
        offset = _HEADER_SIZE
        for _ in range(count):
            unpacked, end = unpack_object_at(self.contents, offset, self.hash_func)
            kind = unpacked.pack_type_num
            chunks = unpacked.decomp_chunks
            if kind == OFS_DELTA:
                assert isinstance(unpacked.delta_base, int)  # noqa: S101 - dulwich's contract
                type_num, raw = self._delta(self._base_at(offset - unpacked.delta_base), chunks)
            elif kind == REF_DELTA:
                assert isinstance(unpacked.delta_base, bytes)  # noqa: S101 - dulwich's contract
                type_num, raw = self._delta(self._base_named(unpacked.delta_base), chunks)
            else:
                type_num, raw = kind, b"".join(chunks)
            digest = self.hash_func()
            digest.update(object_header(type_num, len(raw)))
            digest.update(raw)
            sha = digest.digest()
            entries.append((sha, offset, binascii.crc32(self.contents[offset:end])))
            self.offsets[sha] = offset
            self.bases.put(offset, (type_num, raw))
            offset = end
        return entries

    @staticmethod
    def _delta(base: tuple[int, bytes], delta: list[bytes]) -> tuple[int, bytes]:
        type_num, base_raw = base
        raw = b"".join(apply_delta(base_raw, delta))
        if not raw and type_num != Blob.type_num:
            raise ApplyDeltaError(f"delta resolved to an empty object of type {type_num}")
        return type_num, raw

    def _base_named(self, sha: bytes) -> tuple[int, bytes]:
        offset = self.offsets.get(sha)
        if offset is not None:
            return self._base_at(offset)
        try:
            found = self.resolve_external(RawObjectID(sha))
        except KeyError:
            raise _ForwardReference from None
        self.external.add(RawObjectID(sha))
        return found

    def _base_at(self, offset: int) -> tuple[int, bytes]:
        """The resolved object at `offset`: from the LRU, or re-read along its delta chain."""
        cached = self.bases.get(offset)
        if cached is not None:
            return cached
        chain: list[list[bytes]] = []
        current = offset
        while True:
            unpacked, _ = unpack_object_at(self.contents, current, self.hash_func)
            if unpacked.pack_type_num == OFS_DELTA:
                assert isinstance(unpacked.delta_base, int)  # noqa: S101 - dulwich's contract
                chain.append(unpacked.decomp_chunks)
                current -= unpacked.delta_base
                base = self.bases.get(current)
            elif unpacked.pack_type_num == REF_DELTA:
                assert isinstance(unpacked.delta_base, bytes)  # noqa: S101 - dulwich's contract
                chain.append(unpacked.decomp_chunks)
                base = self._base_named(unpacked.delta_base)
            else:
                base = (unpacked.pack_type_num, b"".join(unpacked.decomp_chunks))
            if base is not None:
                break
        for delta in reversed(chain):
            base = self._delta(base, delta)
        self.bases.put(offset, base)
        return base


def index_pack(
    sink: BinaryIO,
    path: str,
    object_format: ObjectFormat,
    resolve_external: ResolveExternal,
    *,
    cache_bytes: int = 256 * 1024 * 1024,
) -> tuple[list[IndexEntry], set[RawObjectID], bytes]:
    """Index the pack in `sink` (written to `path`); returns entries, external bases, checksum.

    Raises ChecksumMismatch when the pack's trailer does not match its content, and
    dulwich's errors for corrupt objects; every object id is computed from content.
    """
    sink.flush()
    with mmap.mmap(sink.fileno(), 0, access=mmap.ACCESS_READ) as contents:
        size = len(contents)
        hash_len = object_format.oid_length
        if size < _HEADER_SIZE + hash_len or contents[:4] != b"PACK":
            raise ApplyDeltaError("the server sent something that is not a pack")
        stored = contents[size - hash_len :]
        digest = object_format.hash_func()
        for start in range(0, size - hash_len, _CHECKSUM_CHUNK):
            digest.update(contents[start : min(start + _CHECKSUM_CHUNK, size - hash_len)])
        if digest.digest() != stored:
            raise ChecksumMismatch(stored, digest.digest())
        count = int.from_bytes(contents[8:12], "big")
        walk = _Walk(contents, object_format, resolve_external, cache_bytes)
        try:
            entries = walk.run(count)
            return entries, walk.external, stored
        except _ForwardReference:
            pass
    return _index_with_dulwich(sink, path, object_format, resolve_external, stored)


def _index_with_dulwich(
    sink: BinaryIO,
    path: str,
    object_format: ObjectFormat,
    resolve_external: ResolveExternal,
    checksum: bytes,
) -> tuple[list[IndexEntry], set[RawObjectID], bytes]:
    """dulwich's two-pass indexer, which resolves deltas in any order."""
    with PackData(path, file=sink, object_format=object_format) as data:
        indexer = PackIndexer.for_pack_data(data, resolve_ext_ref=resolve_external)
        entries: list[IndexEntry] = list(indexer)
        return entries, set(indexer.ext_refs()), checksum


def write_index_v2(path: str, entries: list[IndexEntry], pack_checksum: bytes) -> None:
    """Write a version 2 pack index for sorted SHA-1 `entries` in a few bulk writes.

    dulwich's writer makes several small writes per object; the format is simple enough
    (fan-out table, ids, CRCs, offsets, large offsets, checksums) to build in arrays.
    """
    fanout = [0] * 256
    for sha, _, _ in entries:
        fanout[sha[0]] += 1
    total = 0
    for first_byte in range(256):
        total += fanout[first_byte]
        fanout[first_byte] = total
    small: list[int] = []
    large: list[int] = []
    for _, offset, _ in entries:
        if offset < 0x80000000:
            small.append(offset)
        else:
            small.append(0x80000000 | len(large))
            large.append(offset)
    body = b"".join(
        (
            b"\377tOc",
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(sha for sha, _, _ in entries),
            struct.pack(f">{len(entries)}I", *((crc or 0) & 0xFFFFFFFF for _, _, crc in entries)),
            struct.pack(f">{len(small)}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            pack_checksum,
        )
    )
    with open(path, "wb") as index:
        index.write(body)
        index.write(hashlib.sha1(body).digest())  # noqa: S324 - the format's checksum, not security
