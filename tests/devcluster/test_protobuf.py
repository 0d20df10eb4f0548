"""Protobuf request bodies the way a client other than kubectl might send them: the table
of field numbers is whole, and what cannot be read is refused clearly, never stored in part.
(kubectl's own protobuf requests are in test_kubectl_imperative.py.)"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from devcluster import DevCluster, protobuf
from devcluster.resources import Registry
from tests.devcluster.conftest import emulator_only

pytestmark = emulator_only(
    "the emulator's protobuf table and refusals (kube-apiserver reads every kind)"
)

PODS = "/api/v1/namespaces/default/pods"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def envelope(api_version: str, kind: str, raw: bytes, encoding: bytes = b"") -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw) + field(3, encoding)


def pod(spec_extra: bytes = b"", status: bytes = b"") -> bytes:
    container = field(1, b"c") + field(2, b"nginx")
    return envelope(
        "v1",
        "Pod",
        field(1, field(1, b"p")) + field(2, field(2, container) + spec_extra) + field(3, status),
    )


async def post(
    cluster: DevCluster, path: str, body: bytes, command: str | None = None
) -> tuple[int, Any]:
    """POST a protobuf body; ``command`` is sent as kubectl sends its Kubectl-Command."""
    headers = {"Content-Type": protobuf.MEDIA_TYPE, "Accept": f"{protobuf.MEDIA_TYPE},*/*"}
    if command:
        headers["Kubectl-Command"] = command
    async with (
        aiohttp.ClientSession() as session,
        session.post(cluster.url + path, data=body, headers=headers) as response,
    ):
        assert response.content_type == "application/json"
        return response.status, json.loads(await response.read())


def test_every_message_the_table_names_has_field_numbers() -> None:
    assert protobuf.message_types() <= set(protobuf.MESSAGES)


def test_every_kind_read_from_protobuf_is_served() -> None:
    registry = Registry()
    for api_version, kind in protobuf.KINDS:
        group, _, version = api_version.rpartition("/")
        assert registry.by_kind(group, version, kind) is not None, kind


async def test_a_pod_with_zero_valued_unknown_fields_and_a_status_is_created(
    devcluster: DevCluster,
) -> None:
    """gogo writes every non-pointer field: unread fields holding zeros (here a
    PodSecurityContext of zeros) are no loss; a status is ignored, as on JSON creates."""
    body = pod(spec_extra=field(14, field(6, 0) + field(2, b"")), status=field(1, b"Running"))
    code, obj = await post(devcluster, PODS, body)
    assert code == 201, obj
    assert obj["spec"]["containers"][0]["image"] == "nginx"
    assert (obj.get("status") or {}).get("phase") != "Running"


async def test_an_unread_field_with_content_is_a_415_naming_it(devcluster: DevCluster) -> None:
    volume = field(1, field(1, b"data"))  # PodSpec.volumes: not in the table
    code, status = await post(devcluster, PODS, pod(spec_extra=volume))
    assert code == 415
    assert status["reason"] == "UnsupportedMediaType"
    assert "protobuf field 1 of PodSpec at spec in a Pod" in status["message"]
    assert "send the object as JSON (Content-Type: application/json)" in status["message"]
    assert devcluster.store.get(("", "pods"), "default", "p") is None


async def test_a_deeply_nested_unread_field_is_a_415_not_a_crash(devcluster: DevCluster) -> None:
    nested = field(1, 1)
    for _ in range(2000):
        nested = field(1, nested)
    code, status = await post(devcluster, PODS, pod(spec_extra=field(1, nested)))
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")


async def test_an_unread_kind_is_a_415_naming_it(devcluster: DevCluster) -> None:
    body = envelope("networking.k8s.io/v1", "NetworkPolicy", field(1, field(1, b"np")))
    code, status = await post(
        devcluster, "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", body
    )
    assert code == 415
    assert "kind 'NetworkPolicy' (networking.k8s.io/v1)" in status["message"]
    assert "ConfigMap" in status["message"]


async def test_a_415_to_kubectl_names_the_command_that_works(devcluster: DevCluster) -> None:
    body = envelope("networking.k8s.io/v1", "NetworkPolicy", field(1, field(1, b"np")))
    code, status = await post(
        devcluster,
        "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
        body,
        command="kubectl create networkpolicy",
    )
    assert code == 415
    assert (
        "kubectl create networkpolicy ... --dry-run=client -o yaml | kubectl apply -f -"
        in status["message"]
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"kind": "Pod"}', "does not start with"),
        (pod()[:-3], "error decoding protobuf"),
        (protobuf.MAGIC + b"\x0f", "error decoding protobuf"),
    ],
    ids=["json-labelled-protobuf", "truncated", "bad-wire-type"],
)
async def test_malformed_protobuf_is_a_400(devcluster: DevCluster, body: bytes, words: str) -> None:
    code, status = await post(devcluster, PODS, body)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert words in status["message"]


async def test_a_compressed_envelope_is_a_415(devcluster: DevCluster) -> None:
    body = envelope("v1", "Pod", b"", encoding=b"gzip")
    code, status = await post(devcluster, PODS, body)
    assert code == 415
    assert "contentEncoding 'gzip'" in status["message"]


async def test_a_protobuf_patch_is_a_415(devcluster: DevCluster) -> None:
    """Patches are JSON, merge, strategic or apply documents: protobuf is no patch type."""
    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"{devcluster.url}/api/v1/namespaces/default",
            data=pod(),
            headers={"Content-Type": protobuf.MEDIA_TYPE},
        ) as response,
    ):
        assert response.status == 415
