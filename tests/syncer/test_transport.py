"""The syncer's HTTP/1.1 transport, its only path to API servers.

Against small HTTP servers on 127.0.0.1: answers with Content-Length or chunked bodies,
idle keep-alive connections the server closes at any time; the transport must read every
framing right and never turn a server-side idle close into a failed sync. Against the
real kube-apiserver of the test bed: TLS with the cluster's CA and a client certificate,
a ServiceAccount's bearer token, a server certificate it must refuse, and an http://
proxy's CONNECT tunnel.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from schemas import ClusterConfig
from syncer.errors import PermanentSyncError, RetriesExhausted
from syncer.kube import ApiRejected, Cluster, ResourceInfo
from syncer.retrying import RetryPolicy
from syncer.transport import Http1Pool, ProtocolViolation
from tests.support.bed import RealCluster

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.query.get("chunked"):
            response = web.StreamResponse(status=200)
            response.enable_chunked_encoding()
            await response.prepare(request)
            for part in (b'{"parts":', b'["a",', b'"b"]}'):
                await response.write(part)
            await response.write_eof()
            return response
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "auth": request.headers.get("Authorization"),
                "type": request.headers.get("Content-Type"),
                "body": body.decode(),
            },
            status=int(request.query.get("status", "200")),
            headers={"Retry-After": request.query["retry_after"]}
            if "retry_after" in request.query
            else None,
        )

    runner, url = await _serve(handler)
    yield url
    await runner.cleanup()


async def test_sends_method_path_headers_and_body_and_reads_the_json_answer(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        status, body, _ = await pool.request(
            "PATCH",
            "/api/v1/namespaces/a/configmaps/b?fieldManager=x",
            {"Authorization": "Bearer t", "Content-Type": "application/apply-patch+yaml"},
            b'{"kind":"ConfigMap"}',
            5.0,
        )
    assert status == 200
    assert b'"method": "PATCH"' in body
    assert b'"path": "/api/v1/namespaces/a/configmaps/b?fieldManager=x"' in body
    assert b'"auth": "Bearer t"' in body
    assert b'"body": "{\\"kind\\":\\"ConfigMap\\"}"' in body


async def test_reads_a_chunked_answer_whole(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        status, body, _ = await pool.request("GET", "/x?chunked=1", {}, None, 5.0)
    assert (status, body) == (200, b'{"parts":["a","b"]}')


async def test_error_statuses_come_back_with_their_body(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        status, body, _ = await pool.request("GET", "/x?status=409", {}, None, 5.0)
    assert status == 409
    assert b'"method": "GET"' in body


async def test_a_retry_after_in_seconds_comes_back_with_the_answer(echo: str) -> None:
    async with Http1Pool(echo) as pool:
        throttled = await pool.request("GET", "/x?status=429&retry_after=2", {}, None, 5.0)
        dated = await pool.request(
            "GET", "/x?status=503&retry_after=Wed,%2021%20Oct%202015", {}, None, 5.0
        )
        plain = await pool.request("GET", "/x", {}, None, 5.0)
    assert (throttled[0], throttled[2]) == (429, 2.0)
    assert (dated[0], dated[2]) == (503, None)
    assert (plain[0], plain[2]) == (200, None)


async def test_many_concurrent_requests_share_a_bounded_pool(echo: str) -> None:
    async with Http1Pool(echo, limit=4) as pool:
        answers = await asyncio.gather(
            *(pool.request("GET", f"/n/{i}", {}, None, 5.0) for i in range(200))
        )
        assert len(pool._all) <= 4
    assert [status for status, _, _ in answers] == [200] * 200
    assert all(f'"/n/{i}"'.encode() in body for i, (_, body, _) in enumerate(answers))


async def test_a_connection_the_server_closed_while_idle_is_replaced_silently() -> None:
    """Servers drop idle keep-alive connections (kube-apiserver after its idle timeout)."""
    server_sides: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_sides.append(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            await reader.read()  # until the client closes
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Http1Pool(f"http://127.0.0.1:{port}") as pool:
        assert await pool.request("GET", "/a", {}, None, 5.0) == (200, b"{}", None)
        server_sides[0].close()  # the idle connection goes away server-side
        await asyncio.sleep(0.05)
        assert await pool.request("GET", "/b", {}, None, 5.0) == (200, b"{}", None)
    assert len(server_sides) == 2
    server.close()
    await server.wait_closed()


async def test_a_server_that_does_not_answer_times_out() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Http1Pool(f"http://127.0.0.1:{port}") as pool:
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/slow", {}, None, 0.2)
    server.close()
    await server.wait_closed()


async def test_an_answer_that_is_not_http_is_a_connection_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            await writer.drain()
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Http1Pool(f"http://127.0.0.1:{port}") as pool:
        with pytest.raises(ProtocolViolation, match=r"not an HTTP/1\.1 status line"):
            await pool.request("GET", "/", {}, None, 5.0)
    server.close()
    await server.wait_closed()


async def test_close_is_safe_twice_and_refuses_later_requests(echo: str) -> None:
    pool = Http1Pool(echo)
    await pool.request("GET", "/", {}, None, 5.0)
    await pool.close()
    await pool.close()
    with pytest.raises(ConnectionAbortedError):
        await pool.request("GET", "/", {}, None, 5.0)


# ------------------------------------------------------- the real API server (the test bed)
# The path users run: HTTPS with the cluster's CA, a client certificate or a bearer token,
# optionally through an http:// proxy, all through `Cluster`, the transport's one user.

_NAMESPACE = ResourceInfo("", "v1", "Namespace", "namespaces", namespaced=False)
_CONFIGMAP = ResourceInfo("", "v1", "ConfigMap", "configmaps", namespaced=True)
_SERVICE_ACCOUNT = ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", namespaced=True)
_ROLE_BINDING = ResourceInfo(
    "rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", namespaced=True
)


def _kubeconfig(path: Path, server: str, user: dict[str, Any], **cluster: Any) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    path.chmod(0o600)
    return str(path)


def _admin(real_cluster: RealCluster) -> dict[str, Any]:
    config = yaml.safe_load(real_cluster.kubeconfig.read_text())
    return {
        "server": config["clusters"][0]["cluster"]["server"],
        "ca": config["clusters"][0]["cluster"]["certificate-authority"],
        "user": config["users"][0]["user"],
    }


def _configmap(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"via": "transport"},
    }


@pytest.fixture
async def admin_cluster(real_cluster: RealCluster, namespace: str) -> AsyncIterator[Cluster]:
    """The bed's admin (client certificate), with this test's namespace made and removed."""
    async with await Cluster.connect(
        "bed", ClusterConfig(kubeconfig=str(real_cluster.kubeconfig))
    ) as cluster:
        await cluster.apply(
            _NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        yield cluster
        await cluster.delete(_NAMESPACE, None, namespace)


async def test_client_certificate_over_tls_applies_reads_and_dry_runs(
    admin_cluster: Cluster, namespace: str
) -> None:
    status, created = await admin_cluster.apply(_CONFIGMAP, _configmap(namespace, "a"))
    assert status == 201
    assert created["metadata"]["managedFields"][0]["manager"] == "gitops-pipeline"
    status, _ = await admin_cluster.apply(_CONFIGMAP, _configmap(namespace, "b"), dry_run=True)
    assert status == 201
    assert await admin_cluster.get(_CONFIGMAP, namespace, "b") is None  # a dry run wrote nothing
    answers = await asyncio.gather(
        *(admin_cluster.get(_CONFIGMAP, namespace, "a") for _ in range(50))
    )
    assert all(a is not None and a["data"] == {"via": "transport"} for a in answers)


async def _service_account_token(admin: Cluster, namespace: str, name: str) -> str:
    """A ServiceAccount allowed to edit `namespace` only, and a bound token of it."""
    await admin.apply(
        _SERVICE_ACCOUNT,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        },
    )
    await admin.apply(
        _ROLE_BINDING,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    answer = await admin.request(
        "POST",
        f"{_SERVICE_ACCOUNT.path(namespace, name)}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    token: str = answer["status"]["token"]
    return token


async def test_a_bearer_token_is_the_identity_of_every_request(
    admin_cluster: Cluster, real_cluster: RealCluster, namespace: str, tmp_path: Path
) -> None:
    bed = _admin(real_cluster)
    token = await _service_account_token(admin_cluster, namespace, "deployer")
    config = _kubeconfig(
        tmp_path / "token.kubeconfig",
        bed["server"],
        {"token": token},
        **{"certificate-authority": bed["ca"]},
    )
    async with await Cluster.connect("bed", ClusterConfig(kubeconfig=config)) as cluster:
        status, _ = await cluster.apply(_CONFIGMAP, _configmap(namespace, "by-token"))
        assert status == 201
        found = await cluster.get(_CONFIGMAP, namespace, "by-token")
        assert found is not None
        # RBAC judges the token's ServiceAccount, not the client certificate of anyone.
        with pytest.raises(ApiRejected) as refused:
            await cluster.apply(_CONFIGMAP, _configmap("default", "by-token"), dry_run=True)
        assert refused.value.status == 403
        assert f"system:serviceaccount:{namespace}:deployer" in refused.value.message

    bad = _kubeconfig(
        tmp_path / "bad.kubeconfig",
        bed["server"],
        {"token": "not-a-token"},
        **{"certificate-authority": bed["ca"]},
    )
    async with await Cluster.connect("bed", ClusterConfig(kubeconfig=bad)) as cluster:
        with pytest.raises(ApiRejected) as unauthorized:
            await cluster.get(_CONFIGMAP, namespace, "by-token")
    assert unauthorized.value.status == 401


async def test_a_server_certificate_from_another_ca_is_refused_and_skip_verify_accepts_it(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    bed = _admin(real_cluster)
    # No certificate-authority: the system's CAs, none of which signed the bed's certificate.
    wrong = _kubeconfig(tmp_path / "wrong.kubeconfig", bed["server"], bed["user"])
    async with await Cluster.connect(
        "bed", ClusterConfig(kubeconfig=wrong), retry=RetryPolicy(api_attempts=1)
    ) as cluster:
        with pytest.raises(RetriesExhausted, match="CERTIFICATE_VERIFY_FAILED"):
            await cluster.resource("v1", "ConfigMap")
    skip = _kubeconfig(
        tmp_path / "skip.kubeconfig",
        bed["server"],
        bed["user"],
        **{"insecure-skip-tls-verify": True},
    )
    async with await Cluster.connect("bed", ClusterConfig(kubeconfig=skip)) as cluster:
        assert (await cluster.resource("v1", "ConfigMap")).plural == "configmaps"


class _ConnectProxy:
    """An http:// proxy that opens CONNECT tunnels (as squid would) and counts them."""

    def __init__(self, credentials: str | None = None) -> None:
        self.credentials = credentials
        self.tunnels: list[str] = []
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, authority, _ = head[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in head[1:] if line)
        expected = (
            "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if self.credentials
            else None
        )
        if method != "CONNECT" or headers.get("Proxy-Authorization") != expected:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        host, port = authority.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.tunnels.append(authority)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def test_through_an_http_proxy_the_api_server_is_reached_in_a_connect_tunnel(
    admin_cluster: Cluster, real_cluster: RealCluster, namespace: str, tmp_path: Path
) -> None:
    bed = _admin(real_cluster)
    proxy = _ConnectProxy(credentials="gitops:s3cr3t")
    async with proxy as address:
        config = _kubeconfig(
            tmp_path / "proxied.kubeconfig",
            bed["server"],
            bed["user"],
            **{"certificate-authority": bed["ca"], "proxy-url": f"http://gitops:s3cr3t@{address}"},
        )
        async with await Cluster.connect("bed", ClusterConfig(kubeconfig=config)) as cluster:
            status, _ = await cluster.apply(_CONFIGMAP, _configmap(namespace, "proxied"))
            assert status == 201
            await asyncio.gather(
                *(cluster.get(_CONFIGMAP, namespace, "proxied") for _ in range(10))
            )
        # TLS with the API server inside the tunnel: the client certificate still decides.
        assert proxy.tunnels and set(proxy.tunnels) == {bed["server"].removeprefix("https://")}

        wrong = _kubeconfig(
            tmp_path / "wrong-proxy.kubeconfig",
            bed["server"],
            bed["user"],
            **{"certificate-authority": bed["ca"], "proxy-url": f"http://{address}"},
        )
        async with await Cluster.connect(
            "bed", ClusterConfig(kubeconfig=wrong), retry=RetryPolicy(api_attempts=1)
        ) as cluster:
            with pytest.raises(RetriesExhausted, match="proxy answered 407"):
                await cluster.get(_CONFIGMAP, namespace, "proxied")


async def test_a_proxy_scheme_the_transport_cannot_use_is_a_configuration_error(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    bed = _admin(real_cluster)
    config = _kubeconfig(
        tmp_path / "socks.kubeconfig",
        bed["server"],
        bed["user"],
        **{"certificate-authority": bed["ca"], "proxy-url": "socks5://127.0.0.1:1080"},
    )
    with pytest.raises(
        PermanentSyncError, match=r"cluster bed: proxy socks5://127\.0\.0\.1 is not supported"
    ):
        await Cluster.connect("bed", ClusterConfig(kubeconfig=config))
