"""The one place that talks to a Kubernetes API server, and converts its errors.

Calls are raw REST requests with JSON bodies we parse ourselves (the generated models would
cost time and lose unknown fields). `kubernetes_asyncio` loads the kubeconfig (or the
pod's service account) and puts the bearer token on every request (static, from an exec
plugin, refreshed); the bytes travel over `syncer.transport`'s keep-alive pool, with the
TLS settings (CA, client certificate) and proxy of the same configuration. It is the
only path; `docs/performance.md` has the measurement against aiohttp that kept it. Every
write is server-side apply with field manager `gitops-pipeline` and `force=true`: Git is
the source of truth for the fields it declares, so when another manager (a human's
`kubectl edit`) took one of them, GitOps takes it back instead of failing the sync on a
conflict; fields nobody declared in Git stay with whoever set them.

Errors: 5xx, 429 and network failures are retried here by the process's `RetryPolicy`
(`syncer.retrying`), then surface as `RetriesExhausted`; a resourceVersion conflict is a
`TransientSyncError` (the whole sync runs again); 404 is `NotFound`; other 4xx are `ApiRejected`
(permanent, with the server's message), and so is the 500 a real API server answers to an
apply that does not fit the schema.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import orjson
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient, Configuration

from schemas import ClusterConfig
from schemas.events import Refusal
from syncer.errors import PermanentSyncError, TransientSyncError
from syncer.jsoncodec import compact_json
from syncer.retrying import RetryableAnswer, RetryPolicy
from syncer.transport import Http1Pool

FIELD_MANAGER = "gitops-pipeline"
APPLY_PATCH = "application/apply-patch+yaml"
JsonObj = dict[str, Any]
_APPLY_QUERY = urlencode([("fieldManager", FIELD_MANAGER), ("force", "true")])
_DRY_APPLY_QUERY = _APPLY_QUERY + "&dryRun=All"
# kube-apiserver answers an apply whose body does not fit the schema (a wrong type, a field
# not declared, duplicate list keys) with a bare 500 (kubernetes/kubernetes#139253): the
# commit is wrong, not the server, and retrying cannot fix it.
_SCHEMA_ERROR = "failed to create typed patch object"
# The authorizer's words in a 403 (k8s.io/apiserver responsewriters.forbiddenMessage).
_FORBIDDEN = re.compile(
    r'User "(?P<account>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)"'
    r' in API group "(?P<group>[^"]*)"(?: in the namespace "(?P<namespace>[^"]*)")?'
)


RequestObserver = Callable[[str, str, int | None], None]
"""Told of every request sent: (cluster, method, HTTP status or None when none came)."""


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """What discovery says about one kind: its URL segment and whether it is namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def _expand_user(path: str) -> str:
    """`~/.kube/config` as users write it (a string operation, no I/O)."""
    return os.path.expanduser(path)


def _pool(configuration: Configuration) -> Http1Pool:
    """The transport for this cluster, with the TLS and proxy settings `kubernetes_asyncio`
    read from the kubeconfig (or the pod's service account). ValueError for a proxy
    scheme it cannot use."""
    context: ssl.SSLContext | None = None
    if str(configuration.host).startswith("https:"):
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.disable_strict_ssl_verification:
            context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return Http1Pool(
        str(configuration.host),
        ssl_context=context,
        server_hostname=configuration.tls_server_name,
        limit=max(int(configuration.connection_pool_maxsize or 0), 1),
        proxy=configuration.proxy or None,
        proxy_headers=dict(configuration.proxy_headers or {}),
    )


class ApiRejected(PermanentSyncError):
    """The API server refused a request for a reason retrying cannot fix (4xx)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.refusal: Refusal | None = None
        """Who was refused what, when RBAC refused it (`Forbidden`)."""


class NotFound(ApiRejected):
    """The object (or its namespace, or its kind) does not exist."""


class Forbidden(ApiRejected):
    """RBAC refused the request (403): the identity it ran as lacks the right.

    `refusal` is the server's statement parsed (who, which verb on which resource, where);
    None when the answer did not follow the authorizer's wording (a webhook's, say)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        refusal = parse_refusal(message)
        super().__init__(status, reason, _describe(refusal) if refusal else message)
        self.refusal = refusal


def parse_refusal(message: str) -> Refusal | None:
    """Who was refused what, from the message of kube-apiserver's 403 Status."""
    found = _FORBIDDEN.search(message)
    if found is None:
        return None
    group, resource = found["group"], found["resource"]
    return Refusal(
        account=found["account"],
        verb=found["verb"],
        resource=f"{resource}.{group}" if group else resource,
        namespace=found["namespace"] or None,
    )


def _describe(refusal: Refusal) -> str:
    where = f"in namespace {refusal.namespace}" if refusal.namespace else "at the cluster scope"
    text = f"forbidden: {refusal.account} may not {refusal.verb} {refusal.resource} {where}"
    if refusal.verb == "impersonate":
        text += " (the syncer needs the impersonate right, see docs/tenancy.md)"
    return text


class UnknownKind(PermanentSyncError):
    """The cluster serves no resource for this apiVersion/kind (a CRD missing?)."""


class Cluster:
    """One target cluster: a shared API client plus a discovery cache.

    An async context manager; `close()` is safe to call twice.
    """

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        request_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        observe: RequestObserver | None = None,
    ) -> None:
        self.name = name
        self._observe = observe
        self._api = api
        self._timeout = request_timeout
        self._retry = retry or RetryPolicy()
        self._kinds: dict[tuple[str, str], dict[str, ResourceInfo]] = {}
        self._discovery_lock = asyncio.Lock()
        self._closed = False
        self._headers: dict[str, str] = {}
        self._view = False
        self._root = self
        """The client views are made from: discovery asks with its own identity."""
        self.identity: str | None = None
        """The user every request impersonates (None: the client's own identity)."""
        try:
            self._pool = _pool(api.configuration)
        except ValueError as exc:
            raise PermanentSyncError(f"cluster {name}: {exc}") from None

    @classmethod
    async def connect(cls, name: str, settings: ClusterConfig, **kwargs: Any) -> Cluster:
        """Build the client from a kubeconfig (path + context) or the pod's service account."""
        configuration = Configuration()
        try:
            if settings.in_cluster:
                kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                assert settings.kubeconfig is not None  # noqa: S101 - validated by the schema
                await kube_config.load_kube_config(
                    config_file=_expand_user(settings.kubeconfig),
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (kube_config.ConfigException, OSError) as exc:
            raise PermanentSyncError(
                f"cluster {name}: cannot load its configuration: {exc}"
            ) from exc
        api = ApiClient(configuration)
        try:
            return cls(name, api, **kwargs)
        except PermanentSyncError:
            await api.close()
            raise

    def impersonating(self, user: str) -> Cluster:
        """A view of this cluster whose every request acts as `user`.

        It shares the connections, the token and the discovery cache; discovery, which
        answers the same for everyone, asks with the client's own identity, so a refused
        impersonation shows on each object's dry run. Closing a view closes nothing.

        Only `Impersonate-User` is sent: for a ServiceAccount's user name the API server
        adds its groups itself (system:serviceaccounts, system:serviceaccounts:<namespace>,
        system:authenticated), so the syncer never needs the right to impersonate groups,
        which would let it claim any group, system:masters included."""
        view = copy.copy(self)
        view._headers = {"Impersonate-User": user}
        view._view = True
        view.identity = user
        return view

    async def close(self) -> None:
        if self._view:
            return
        if not self._closed:
            self._closed = True
            await self._pool.close()
            await self._api.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- discovery
    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """Discovery for `kind`; refreshed once on a miss (a CRD may have just appeared)."""
        group, _, version = api_version.rpartition("/")
        key = (group, version)
        found = self._kinds.get(key, {}).get(kind)
        if found is None:
            async with self._discovery_lock:
                await self._discover(group, version)
            found = self._kinds.get(key, {}).get(kind)
        if found is None:
            raise UnknownKind(
                f"the cluster serves no {kind} in {api_version} (is its CRD installed?)"
            )
        return found

    def forget(self, group: str) -> None:
        """Drop cached discovery of a group, e.g. after its CRD became established."""
        for key in [k for k in self._kinds if k[0] == group]:
            del self._kinds[key]

    async def _discover(self, group: str, version: str) -> None:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = await self._root.request("GET", path)
        except NotFound:
            self._kinds[(group, version)] = {}
            return
        kinds: dict[str, ResourceInfo] = {}
        for entry in doc.get("resources", []):
            if "/" in entry.get("name", ""):
                continue  # subresources such as deployments/status
            kinds[entry["kind"]] = ResourceInfo(
                group, version, entry["kind"], entry["name"], bool(entry.get("namespaced"))
            )
        self._kinds[(group, version)] = kinds

    # ---------------------------------------------------------------- verbs
    async def apply(
        self, info: ResourceInfo, body: JsonObj, *, dry_run: bool = False, encoded: bytes = b""
    ) -> tuple[int, JsonObj]:
        """Server-side apply `body` (sent as `encoded` when the caller has its JSON
        already); returns (HTTP status, resulting object)."""
        meta = body["metadata"]
        path = info.path(meta.get("namespace"), meta["name"])
        return await self._request_with_status(
            "PATCH",
            f"{path}?{_DRY_APPLY_QUERY if dry_run else _APPLY_QUERY}",
            body=encoded or body,
            content_type=APPLY_PATCH,
        )

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> JsonObj | None:
        try:
            return await self.request("GET", info.path(namespace, name))
        except NotFound:
            return None

    async def list_objects(self, info: ResourceInfo, namespace: str | None = None) -> list[JsonObj]:
        doc = await self.request("GET", info.path(namespace))
        items: list[JsonObj] = doc.get("items") or []
        return items

    async def delete(self, info: ResourceInfo, namespace: str | None, name: str) -> bool:
        """Delete in the background (dependents too); False when it was already gone."""
        try:
            await self.request(
                "DELETE",
                info.path(namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )
        except NotFound:
            return False
        return True

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: JsonObj | None = None,
        content_type: str = "application/json",
    ) -> JsonObj:
        _, doc = await self._request_with_status(
            method, path, query=query, body=body, content_type=content_type
        )
        return doc

    async def _request_with_status(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: JsonObj | bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, JsonObj]:
        return await self._retry.request(
            lambda: self._once(method, path, query, body, content_type),
            f"cluster {self.name}: {method} {path}",
        )

    async def _once(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None,
        body: JsonObj | bytes | None,
        content_type: str,
    ) -> tuple[int, JsonObj]:
        # The generated client's call_api costs more CPU than the API server's work for
        # small objects (it re-walks every body); we reuse its configuration and auth only.
        headers = {"Content-Type": content_type, "Accept": "application/json", **self._headers}
        params: list[tuple[str, str]] = list(query or [])
        await self._api.update_params_for_auth(headers, params, ["BearerToken"])
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        data = body if body is None or isinstance(body, bytes) else compact_json(body)
        try:
            status, raw, retry_after = await self._pool.request(
                method, path, headers, data, self._retry.timeout(self._timeout)
            )
        except (TimeoutError, OSError) as exc:
            if self._observe is not None:
                self._observe(self.name, method, None)
            raise RetryableAnswer(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if self._observe is not None:
            self._observe(self.name, method, status)
        try:
            doc = orjson.loads(raw) if raw else {}
        except ValueError:
            doc = {"message": raw[:200].decode("utf-8", "replace")}
        if 200 <= status < 300:
            return status, doc if isinstance(doc, dict) else {}
        message = str(doc.get("message") or f"HTTP {status}") if isinstance(doc, dict) else ""
        reason = str(doc.get("reason") or "") if isinstance(doc, dict) else ""
        if status == 500 and message.startswith(_SCHEMA_ERROR):
            raise ApiRejected(status, reason or "BadRequest", message)
        if status == 429 or status >= 500:
            raise RetryableAnswer(
                f"HTTP {status} {reason}: {message}".replace("  ", " "), retry_after=retry_after
            )
        if status == 409 and reason == "Conflict":
            # resourceVersion races (not apply conflicts, force=true takes those over).
            raise TransientSyncError(f"cluster {self.name}: {message}", delay=1.0)
        if status == 404:
            raise NotFound(status, reason, message)
        if status == 403:
            raise Forbidden(status, reason, message)
        raise ApiRejected(status, reason, message)
