"""The configuration file: brokers, clusters, repositories and the apps that tie them together.

Models are frozen values; `schemas.loading` turns a YAML file into a `GitopsConfig`
and reports every problem with its line. Secrets are resolved at load time into
`SecretStr` so that no repr, log line or event can print them.
"""

from __future__ import annotations

import functools
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """Accept `60s`, `5m`, `1h30m`, `250ms` or seconds, as Flux and Argo CD users write them;
    `0` too with `allow_zero`, where it means "do not wait"."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a duration like '60s' or '5m', got {value!r}")
    elif isinstance(value, int | float):
        result = timedelta(seconds=float(value))
    elif isinstance(value, str):
        text = value.strip()
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise ValueError(
                f"invalid duration {value!r}: use a number with a unit, e.g. '30s', '5m', '1h30m'"
            )
        result = timedelta(seconds=total)
    else:
        raise ValueError(f"expected a duration like '60s' or '5m', got {type(value).__name__}")
    if result < timedelta(0) or (result == timedelta(0) and not allow_zero):
        rule = "must not be negative" if allow_zero else "must be positive"
        raise ValueError(f"duration {rule}, got {value!r}")
    return result


def _format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{int(seconds * 1000)}ms"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_format_duration, return_type=str, when_used="json"),
]


WaitDuration = Annotated[
    timedelta,
    BeforeValidator(functools.partial(parse_duration, allow_zero=True)),
    PlainSerializer(_format_duration, return_type=str, when_used="json"),
]

_SIZE = re.compile(r"^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}


def parse_size(value: object) -> int:
    """Accept a byte count or `5MiB`-style sizes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value.strip())):
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ValueError(f"invalid size {value!r}: use bytes or a unit, e.g. '5MiB'")
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SecretRef(_Model):
    """Where a secret comes from: an environment variable, a file, or (local use only) a value.

    Resolved when the configuration is loaded; the resolved value is a `SecretStr`.
    """

    env: str | None = None
    """Name of the environment variable holding the secret."""
    file: str | None = None
    """Path of a file holding the secret (trailing newline stripped), e.g. a mounted Secret."""
    value: SecretStr | None = None
    """The secret itself; meant for local stacks and tests, not for production files."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretRef:
        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a secret needs exactly one of 'env', 'file' or 'value'")
        return self

    def resolve(self) -> SecretStr:
        """Read the secret now; raises `ValueError` naming the variable or file when absent."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            found = os.environ.get(self.env)
            if found is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(found)
        assert self.file is not None  # noqa: S101 - guaranteed by the validator
        try:
            return SecretStr(Path(self.file).read_text(encoding="utf-8").rstrip("\n"))
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror}") from None


class KafkaSettings(_Model):
    """How to reach the broker and name the topics."""

    bootstrap: str = "localhost:9092"
    """Comma-separated host:port list; the environment variable GITOPS_KAFKA_BOOTSTRAP wins."""
    topic_prefix: str = Field("gitops", pattern=r"^[A-Za-z0-9._-]+$")
    """Topics are `<prefix>.push-events`, `.sync-requests`, `.sync-events`, `.sync-requests.dlq`
    and the compacted `.app-status`."""
    partitions: int = Field(12, ge=1, le=10_000)
    """Partitions of topics created at start-up; bounds how many syncers do useful work."""
    replication_factor: int = Field(1, ge=1, le=10)
    """Replication factor of topics created at start-up."""
    idempotence: bool = True
    """Idempotent producer; turn off for brokers without InitProducerId v1+ (e.g. Tansu)."""
    client_id: str = "gitops-pipeline"
    """Client id the broker sees in its logs and quotas."""
    request_timeout: Duration = timedelta(seconds=5)
    """How long a publish may wait for the broker's acknowledgement before it counts as failed."""
    startup_timeout: Duration = timedelta(seconds=30)
    """How long `gitops receiver`, `syncer` and `notifier` retry a broker that does not answer
    at start before they exit 3 (a pod restarting with back-off then tries again); the
    one-shot commands do not wait."""

    def producer_options(self) -> dict[str, object]:
        """Keyword arguments for an aiokafka producer: every message acked by all replicas."""
        timeout_ms = int(self.request_timeout.total_seconds() * 1000)
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "acks": "all",
            "enable_idempotence": self.idempotence,
            "request_timeout_ms": timeout_ms,
            "linger_ms": 0,
        }


_SERVICE_ACCOUNT = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _service_account(value: str) -> str:
    if not _SERVICE_ACCOUNT.match(value) or len(value) > 63 + 1 + 253:
        raise ValueError(
            "a ServiceAccount is NAME (in the app's namespace) or NAMESPACE/NAME, in "
            "lowercase letters, digits and '-'"
        )
    return value


ServiceAccountName = Annotated[str, AfterValidator(_service_account)]
"""`NAME` or `NAMESPACE/NAME` of a ServiceAccount."""


class ClusterConfig(_Model):
    """A target cluster: a kubeconfig (and context), or the cluster the syncer runs in."""

    kubeconfig: str | None = None
    """Path of a kubeconfig file."""
    context: str | None = None
    """Context inside the kubeconfig; its current context when omitted."""
    in_cluster: bool = False
    """Use the pod's service account (the cluster the syncer runs in)."""
    default_service_account: ServiceAccountName | None = None
    """ServiceAccount that apps of this cluster without `service_account` act as: `NAME`
    (in each app's `namespace`) or `NAMESPACE/NAME`. Unset: such apps act with the syncer's
    own rights. See docs/tenancy.md."""

    @model_validator(mode="after")
    def _one_way_in(self) -> ClusterConfig:
        if self.in_cluster and self.kubeconfig:
            raise ValueError("set either 'kubeconfig' or 'in_cluster: true', not both")
        if not self.in_cluster and not self.kubeconfig:
            raise ValueError("set 'kubeconfig' (and optionally 'context') or 'in_cluster: true'")
        return self


class FileRef(_Model):
    """A file the process reads (not a secret, so no `env` or `value`)."""

    file: str
    """Path of the file."""


class SshAuth(_Model):
    """An SSH identity (e.g. a deploy key) and the host keys the server must present.

    Host keys are always checked against `known_hosts`: an unknown or changed host key
    fails the fetch, naming the host and the key's fingerprint; nothing is trusted on
    first use.
    """

    private_key: SecretRef
    """The private key file's content (OpenSSH or PEM), e.g. `{file: /run/secrets/deploy_key}`."""
    passphrase: SecretRef | None = None
    """Passphrase of an encrypted private key."""
    known_hosts: str | FileRef
    """Pinned host keys: known_hosts lines (`ssh-keyscan -p PORT HOST` prints them; a port
    other than 22 is written `[host]:port`) or `{file: PATH}` of a known_hosts file."""


class GitHubAppAuth(_Model):
    """Fetch as a GitHub App installation: a short-lived token minted from the app's key."""

    app_id: int | str
    """The app's ID (or client ID); the issuer of the JWT signed with `private_key`."""
    installation_id: int = Field(ge=1)
    """The installation on the organisation or account that owns the repository."""
    private_key: SecretRef
    """The app's private key (the PEM file GitHub generates), e.g. `{file: app.pem}`."""
    api_url: str = Field("https://api.github.com", pattern=r"^https?://")
    """REST API base; `https://HOST/api/v3` for GitHub Enterprise Server."""


class GitAuth(_Model):
    """Credentials for fetching a private repository: one of `token`, `ssh` or `github_app`.

    The same credentials serve branch-head polls, fetches and commit verification, and the
    notifier's commit statuses on the same host. `ca_bundle` and `proxy` apply to HTTPS.
    """

    token: SecretRef | None = None
    """An access token, sent as HTTP basic auth password."""
    username: str = "git"
    """Basic-auth user name sent with the token (GitHub accepts any, GitLab wants `oauth2`)."""
    ssh: SshAuth | None = None
    """An SSH key and pinned host keys, for `ssh://` and `git@host:path` URLs."""
    github_app: GitHubAppAuth | None = None
    """GitHub App credentials; installation tokens are minted and renewed as needed."""
    ca_bundle: FileRef | None = None
    """PEM file of the CA certificates that sign the git server's HTTPS certificate (a
    private CA); the system's trust store when unset."""
    proxy: str | None = Field(None, pattern=r"^https?://")
    """HTTP(S) proxy for the git server (and the GitHub API), e.g. `http://proxy:3128`."""

    def secret_refs(self) -> list[SecretRef]:
        """Every secret this auth holds, so logs can redact each of them."""
        refs = [self.token] if self.token is not None else []
        if self.ssh is not None:
            refs.append(self.ssh.private_key)
            if self.ssh.passphrase is not None:
                refs.append(self.ssh.passphrase)
        if self.github_app is not None:
            refs.append(self.github_app.private_key)
        return refs

    def kind(self) -> str | None:
        """How this repository authenticates, for summaries (never the secret itself)."""
        if self.ssh is not None:
            return "ssh key"
        if self.github_app is not None:
            return f"GitHub App {self.github_app.app_id}"
        if self.token is not None:
            return "token"
        return None

    @model_validator(mode="after")
    def _one_credential(self) -> GitAuth:
        given = [k for k in ("token", "ssh", "github_app") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"set one of 'token', 'ssh' or 'github_app', not {' and '.join(given)}"
            )
        return self


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?:[^:/\[\]]+|\[[^\]]+\]):(?!//)")


def is_ssh_url(url: str) -> bool:
    """Whether git reaches `url` over SSH: `ssh://`, `git+ssh://` or scp-like `git@host:path`."""
    text = url.strip()
    if "://" in text:
        return text.split("://", 1)[0].lower() in ("ssh", "git+ssh", "ssh+git")
    return bool(_SCP_LIKE.match(text))


_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


class CommitVerification(_Model):
    """Only apply commits signed by one of these keys.

    Anyone who can push to the branch can otherwise change the cluster; requiring a
    signature moves that trust to the holders of the listed keys. A commit that is
    unsigned, or signed by any other key, fails its sync and is never applied.
    """

    ssh_allowed_signers: list[str] = Field(default_factory=list)
    """Public keys as in `~/.ssh/id_ed25519.pub` ("ssh-ed25519 AAAA... comment"), for
    commits signed with git's `gpg.format=ssh`; kept in the config so that a compromised
    repository cannot add its own key."""
    gpg_public_keys: list[str] = Field(default_factory=list)
    """ASCII-armored public keys (`gpg --armor --export KEYID`) for OpenPGP-signed
    commits, for teams whose signing keys already live in GnuPG."""

    @field_validator("ssh_allowed_signers")
    @classmethod
    def _ssh_key_lines(cls, keys: list[str]) -> list[str]:
        for key in keys:
            fields = key.split()
            if len(fields) < 2 or fields[0] not in _SSH_KEY_TYPES or "\n" in key.strip():
                raise ValueError(
                    f"ssh_allowed_signers entry {key[:40]!r} is not a public key line: "
                    "expected '<type> <base64> [comment]' as in an id_ed25519.pub file"
                )
        return keys

    @field_validator("gpg_public_keys")
    @classmethod
    def _armored(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in key:
                raise ValueError(
                    "gpg_public_keys entries must be ASCII-armored public keys "
                    "(gpg --armor --export KEYID)"
                )
        return keys

    @model_validator(mode="after")
    def _some_key(self) -> CommitVerification:
        if not self.ssh_allowed_signers and not self.gpg_public_keys:
            raise ValueError(
                "verify needs at least one key in 'ssh_allowed_signers' or 'gpg_public_keys'"
                " (otherwise no commit could ever be applied)"
            )
        return self


class RepositoryConfig(_Model):
    """A registered Git repository. Webhook payloads can only select these, never add one."""

    url: str = Field(min_length=1)
    """Clone URL (https, ssh or file); webhooks are matched against its normalised form."""
    webhook_secret: SecretRef | list[SecretRef] | None = None
    """Secret(s) that sign webhooks; a list allows rotation (any one valid secret is accepted)."""
    auth: GitAuth | None = None
    """Credentials for fetching; omit for public repositories."""
    verify: CommitVerification | None = None
    """Require signed commits; omit to apply whatever the branch points at."""

    @model_validator(mode="after")
    def _auth_fits_url(self) -> RepositoryConfig:
        auth = self.auth
        if auth is None:
            return self
        ssh = is_ssh_url(self.url)
        if auth.ssh is not None and not ssh:
            raise ValueError("'auth.ssh' needs an ssh:// or git@host:path URL")
        if ssh and (auth.token or auth.github_app or auth.ca_bundle or auth.proxy):
            raise ValueError(
                "an SSH URL takes 'auth.ssh'; token, github_app, ca_bundle and proxy are for HTTPS"
            )
        return self

    def webhook_secrets(self) -> list[SecretRef]:
        if self.webhook_secret is None:
            return []
        if isinstance(self.webhook_secret, list):
            return list(self.webhook_secret)
        return [self.webhook_secret]


_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class HelmSource(_Model):
    """How to render an app whose path is a Helm chart."""

    values: dict[str, Any] = Field(default_factory=dict)
    """Inline values; applied last, so they win over `value_files` and the chart defaults."""
    value_files: list[str] = Field(default_factory=list)
    """Values files read from the same commit, relative to the repository root (not the
    chart), merged in order; lets one chart serve several apps (e.g. envs/prod.yaml)."""
    release_name: str | None = Field(None, pattern=_K8S_NAME, max_length=53)
    """`.Release.Name` in templates; the app name when unset."""

    @field_validator("value_files")
    @classmethod
    def _files_stay_inside(cls, files: list[str]) -> list[str]:
        for name in files:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(
                    f"value file {name!r} must be relative to the repository root "
                    "and stay inside it"
                )
        return files


class KustomizeSource(_Model):
    """How to render an app whose path holds a kustomization."""

    allow_remote_bases: bool = False
    """Let resources, bases and components point at URLs. Off by default: a remote base is
    not pinned by the commit, so the same commit could render differently tomorrow, and
    rendering would need the network."""


SourceKind = Literal["directory", "kustomize", "helm"]


class Decryption(_Model):
    """How the syncer decrypts SOPS-encrypted files of an app before applying them."""

    provider: Literal["sops"]
    """`sops`: files encrypted with SOPS (age recipients), decrypted by the `sops` binary."""
    secret: str | None = Field(None, pattern=_K8S_NAME, max_length=253)
    """A Secret in `syncer.inventory_namespace` of the app's cluster whose `*.agekey`
    entries hold the age identities (read with the syncer's own rights)."""
    keys: SecretRef | None = None
    """The age identities themselves (`AGE-SECRET-KEY-1...` lines): `{file: PATH}` or
    `{env: NAME}`, read at each sync."""

    @model_validator(mode="after")
    def _one_key_source(self) -> Decryption:
        if (self.secret is None) == (self.keys is None):
            raise ValueError("decryption needs exactly one of 'secret' or 'keys'")
        return self


class AppConfig(_Model):
    """One directory of manifests in one repository, synced to one cluster and namespace."""

    repo: str
    """Key of the repository under `repositories:`."""
    branch: str = "main"
    """Branch whose head is applied."""
    path: str = "."
    """Directory inside the repository holding the manifests; '.' is the root."""
    cluster: str
    """Key of the cluster under `clusters:`."""
    namespace: str = Field("default", pattern=_K8S_NAME, max_length=63)
    """Namespace given to namespaced objects that do not name one."""
    prune: bool = True
    """Delete objects that this app applied before and that left Git."""
    self_heal: bool = True
    """Re-apply when live state drifts; when false, drift is only reported."""
    interval: Duration = timedelta(seconds=60)
    """Period of the branch-head poll and drift check; webhooks make it a fallback."""
    allowed_namespaces: list[str] | None = None
    """When set, objects may only land in these namespaces."""
    allow_cluster_scoped: bool = True
    """Whether the app may manage cluster-scoped objects (Namespaces, ClusterRoles, CRDs...)."""
    denied_kinds: list[str] = Field(default_factory=list)
    """Kinds this app may never manage, e.g. ['ClusterRoleBinding', 'Secret']."""
    drift_ignore: list[str] = Field(default_factory=list)
    """Field paths left out of drift detection, e.g. 'spec.replicas' when an HPA owns it."""
    source: SourceKind | None = None
    """How `path` becomes manifests; unset means detect it: a kustomization file makes it
    `kustomize`, a `Chart.yaml` makes it `helm`, anything else is a `directory` of YAML."""
    helm: HelmSource | None = None
    """Values and release name when the source is a Helm chart."""
    kustomize: KustomizeSource | None = None
    """Options when the source is a kustomization."""
    depends_on: list[str] = Field(default_factory=list)
    """Apps that must be synced and healthy at their branch head before this app syncs a
    commit (a platform before the apps on it); until then its requests are `skipped`
    ("waiting for <app>") and run again when that app's sync succeeds. A cycle, or an
    unknown name, is a configuration error."""
    service_account: ServiceAccountName | None = None
    """ServiceAccount every request of this app's sync impersonates: `NAME` (in the app's
    `namespace`) or `NAMESPACE/NAME`; the cluster's `default_service_account` when unset.
    The account's RBAC rights then bound what a commit can change (docs/tenancy.md)."""
    decryption: Decryption | None = None
    """Decrypt SOPS-encrypted files before applying them; without it an encrypted file
    fails the sync."""

    @model_validator(mode="after")
    def _path_stays_inside(self) -> AppConfig:
        parts = Path(self.path).parts
        if Path(self.path).is_absolute() or ".." in parts:
            raise ValueError(f"path {self.path!r} must be relative and stay inside the repository")
        return self


class PathGenerator(_Model):
    """Which paths of the branch head make an app: globs matched one path segment at a time.

    Shell-style (`*` never crosses a `/`), against repository-relative paths.
    """

    include: list[str] = Field(min_length=1)
    """Globs of the paths that make an app, e.g. `apps/*` or `envs/*/services/*`."""
    exclude: list[str] = Field(default_factory=list)
    """Globs of matching paths to leave out, e.g. `apps/_template`."""

    @field_validator("include", "exclude")
    @classmethod
    def _relative_globs(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            parts = Path(glob).parts
            if not glob.strip() or Path(glob).is_absolute() or ".." in parts:
                raise ValueError(
                    f"glob {glob!r} must be relative to the repository root and stay inside it"
                )
        return globs


class AppSetConfig(_Model):
    """Apps generated from a repository: one per matching directory or file of a branch.

    Every generated app is an ordinary app (same topics, keys, events and commands),
    named `<set>-<basename>` unless the template sets `name`.
    """

    repo: str
    """Key of the repository under `repositories:` whose branch is scanned."""
    branch: str = "main"
    """Branch whose head decides which apps exist; the generated apps follow it too."""
    directories: PathGenerator | None = None
    """One app per matching directory; the template sees `path`, `basename`, `dirname`."""
    files: PathGenerator | None = None
    """One app per matching YAML file; the template also sees the file's top-level keys
    (and all of them under `file`), and `path` is the directory holding the file."""
    template: dict[str, Any] = Field(default_factory=dict)
    """App settings (any key of an app but `repo` and `branch`, plus `name`); string values
    are Jinja templates (sandboxed, undefined names are errors), e.g. `{{ basename }}`.
    `path` defaults to `{{ path }}`."""
    prune: bool = False
    """When a directory or file leaves the branch, delete its app's objects from the
    cluster; when false they are left in place and reported as orphaned."""
    interval: Duration = timedelta(seconds=60)
    """How often the branch head is checked for added or removed apps (webhooks make it a
    fallback)."""

    @model_validator(mode="after")
    def _one_generator(self) -> AppSetConfig:
        if (self.directories is None) == (self.files is None):
            raise ValueError("an app set needs exactly one generator: 'directories' or 'files'")
        return self

    @property
    def generator(self) -> PathGenerator:
        found = self.directories or self.files
        assert found is not None  # noqa: S101 - guaranteed by the validator
        return found


class ReceiverSettings(_Model):
    """Limits and behaviour of the webhook receiver."""

    max_body_bytes: ByteSize = 5 * 1024 * 1024
    """Bodies larger than this are refused with 413."""
    dedupe_window: Duration = timedelta(hours=1)
    """A delivery id seen within this window is acknowledged again but not republished."""
    retry_after: Duration = timedelta(seconds=5)
    """Value of Retry-After on 503 answers while the broker is unavailable."""
    rate_limit_per_minute: int | None = Field(None, ge=1)
    """Per-source request limit (429 above it); off when unset."""
    max_concurrent_requests: int = Field(256, ge=1)
    """Requests handled at once; more wait for a slot."""
    header_timeout: Duration = timedelta(seconds=10)
    """How long a connection may take to send a complete request line and headers (and how
    long an idle keep-alive connection stays open); slower connections are closed, so a
    slowloris sender cannot hold sockets open."""
    body_timeout: Duration = timedelta(seconds=10)
    """How long reading one request body may take; a sender that announces more bytes than
    it sends is answered 408 and disconnected instead of holding a request slot."""


class SyncerSettings(_Model):
    """Behaviour of the syncer workers."""

    cache_dir: str = "~/.cache/gitops-pipeline"
    """Where cached bare repositories and render snapshots live."""
    concurrency: int = Field(8, ge=1, le=256)
    """Apps one syncer works on at once (dry run, apply, prune); a sync waiting for its
    workloads to become healthy, a hook's Job or a CRD does not count while it waits."""
    max_attempts: int = Field(3, ge=1, le=20)
    """Runs of a whole sync for sync-level transient causes (git server unreachable, a CRD
    not yet established, a resourceVersion race) before the request is dead-lettered."""
    api_attempts: int = Field(5, ge=1, le=20)
    """Tries of one Kubernetes API request that met a 429, 5xx, timeout or lost connection,
    with backoff from 0.2 s doubling to 5 s and never sooner than the server's Retry-After."""
    sync_timeout: Duration = timedelta(minutes=10)
    """Most time one sync may take, its retries included; then it fails and is dead-lettered."""
    health_timeout: WaitDuration = timedelta(seconds=60)
    """How long to wait for workloads to become ready after an apply. `0` does not wait:
    an app reports `succeeded` once applied, without health (as Flux's `wait: false`);
    waves then follow each other without waiting, and hooks are still waited for (1 min)."""
    inventory_namespace: str = Field("gitops-system", pattern=_K8S_NAME)
    """Namespace of the ConfigMaps recording what each app owns."""
    max_file_bytes: ByteSize = 4 * 1024 * 1024
    """Manifest files larger than this fail the sync."""
    group_id: str = Field("gitops-syncers", min_length=1)
    """Kafka consumer group of the syncers; every member of one installation shares it."""
    session_timeout: Duration = timedelta(seconds=10)
    """How long the broker waits for a silent member before moving its partitions."""
    heartbeat_interval: Duration = timedelta(seconds=3)
    """How often a member tells the broker it is alive; well below `session_timeout`."""
    git_timeout: Duration = timedelta(seconds=30)
    """Longest wait for one answer of the git server; a slower one is a transient failure."""
    api_timeout: Duration = timedelta(seconds=30)
    """Longest wait for one answer of a Kubernetes API server before the request is retried."""


NotificationTrigger = Literal["requested", "succeeded", "failed", "skipped", "drift"]
NotificationProvider = Literal[
    "github", "gitlab", "gitea", "bitbucket", "slack", "msteams", "webhook"
]
COMMIT_STATUS_PROVIDERS: tuple[str, ...] = ("github", "gitlab", "gitea", "bitbucket")
_RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def _template_syntax(template: str | None) -> str | None:
    """A template that cannot compile is a configuration error, not a failed delivery later."""
    if template is None:
        return None
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        SandboxedEnvironment().parse(template)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template line {exc.lineno}: {exc.message}") from None
    return template


class NotificationRule(_Model):
    """Tell a commit-status API, a chat or a webhook about the outcomes of some apps."""

    name: str = Field(pattern=_RULE_NAME, max_length=63)
    """Names the rule in logs, metrics and `gitops.notification.failed` events; unique."""
    on: list[NotificationTrigger] = Field(min_length=1)
    """Which moments notify: `requested`, `succeeded`, `failed`, `skipped`, `drift`."""
    apps: list[str] = Field(default_factory=list)
    """App names or shell-style globs (`shop-*`); every app when empty."""
    provider: NotificationProvider
    """`github`, `gitlab`, `gitea`, `bitbucket` (commit status on the synced commit), `slack`
    (incoming webhook), `msteams` (workflow webhook) or `webhook` (the CloudEvent, as JSON)."""
    url: str | SecretRef | None = None
    """For a commit-status provider the API base (default the public host's API, e.g.
    `https://api.github.com`; `http://host/api/v3` for GitHub Enterprise); for chat and
    `webhook` the endpoint (required). A plain string or a secret reference: a Slack
    webhook URL is a credential."""
    token: SecretRef | None = None
    """API token of a commit-status provider. When unset, the app's repository `auth` is
    used where it is for the same host as `url` (an HTTPS token, or a `github_app` whose
    `api_url` is `url`); a rule no credential serves is a configuration error."""
    secret: SecretRef | None = None
    """`webhook` only: HMAC-SHA256 key; each POST then carries `X-Gitops-Signature-256:
    sha256=<hex of the body's HMAC>`, as GitHub signs its webhooks."""
    template: str | None = None
    """Jinja2 text (sandboxed) for the message or status description, with `app`, `commit`,
    `short_commit`, `outcome`, `error`, `cluster`, `reason`, `rule` and `event`."""
    repository: str | None = Field(None, pattern=r"^[^/\s]+(/[^/\s]+)+$")
    """`owner/name` of the commit-status target; derived from the app's repository URL
    (`.../<owner>/<name>(.git)`) when unset."""
    target_url: str | None = None
    """Link attached to a commit status (Bitbucket requires one; the repository's web page
    when unset)."""

    @field_validator("template")
    @classmethod
    def _compiles(cls, template: str | None) -> str | None:
        return _template_syntax(template)

    @model_validator(mode="after")
    def _fits_provider(self) -> NotificationRule:
        status = self.provider in COMMIT_STATUS_PROVIDERS
        if status and "drift" in self.on:
            raise ValueError(
                f"provider {self.provider} sets commit statuses for sync outcomes; send drift"
                " to slack, msteams or webhook instead"
            )
        if not status and self.url is None:
            raise ValueError(f"provider {self.provider} needs 'url' (the endpoint to POST to)")
        if not status and self.token is not None:
            raise ValueError(f"'token' is for commit-status providers, not {self.provider}")
        if self.secret is not None and self.provider != "webhook":
            raise ValueError("'secret' (the HMAC key) is for provider webhook only")
        if not status and (self.repository or self.target_url):
            raise ValueError("'repository' and 'target_url' are for commit-status providers")
        return self


class NotifierSettings(_Model):
    """Behaviour of the notifier processes (`gitops notifier`)."""

    group_id: str = Field("gitops-notifiers", min_length=1)
    """Kafka consumer group of the notifiers; members share the partitions."""
    max_attempts: int = Field(5, ge=1, le=20)
    """Attempts per notification for 5xx, 429 and network errors before it is given up."""
    retry_delay: Duration = timedelta(seconds=1)
    """Wait before the second attempt; doubled for each further one (a `Retry-After` wins)."""
    max_delay: Duration = timedelta(seconds=60)
    """Longest wait between two attempts, `Retry-After` included."""
    request_timeout: Duration = timedelta(seconds=10)
    """Longest wait for one provider's answer; a slower one counts as a network error."""
    rate_limits: dict[NotificationProvider, float] = Field(default_factory=dict)
    """Requests per second per provider, over all rules of one notifier (defaults: slack 1,
    msteams 4, webhook 50, commit-status providers 10)."""
    session_timeout: Duration = timedelta(seconds=10)
    """How long the broker waits for a silent member before moving its partitions."""
    heartbeat_interval: Duration = timedelta(seconds=3)
    """How often a member tells the broker it is alive; well below `session_timeout`."""

    @field_validator("rate_limits")
    @classmethod
    def _positive_rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for provider, rate in rates.items():
            if rate <= 0:
                raise ValueError(f"rate_limits.{provider} must be positive, got {rate}")
        return rates


class UiSettings(_Model):
    """The read-only web dashboard (`gitops ui`)."""

    token: SecretRef | None = None
    """Bearer token every request must carry (`Authorization: Bearer ...`, or the sign-in
    form's cookie); required to listen on any address but 127.0.0.1/::1/localhost."""
    max_events: int = Field(5000, ge=100, le=1_000_000)
    """Events kept in memory for the Events page and the app pages (newest win)."""


class GitopsConfig(_Model):
    """The whole configuration file."""

    kafka: KafkaSettings = KafkaSettings()
    """Broker connection and topics."""
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    """Target clusters by name."""
    repositories: dict[str, RepositoryConfig] = Field(default_factory=dict)
    """Registered repositories by name."""
    apps: dict[str, AppConfig] = Field(default_factory=dict)
    """Apps by name; the name is the Kafka key of the app's requests and events."""
    app_sets: dict[str, AppSetConfig] = Field(default_factory=dict)
    """Rules generating apps from the directories or files of a branch, by set name."""
    receiver: ReceiverSettings = ReceiverSettings()
    """Webhook receiver settings."""
    syncer: SyncerSettings = SyncerSettings()
    """Syncer worker settings."""
    notifications: list[NotificationRule] = Field(default_factory=list)
    """Notification rules: commit statuses, chat messages and webhooks about outcomes."""
    notifier: NotifierSettings = NotifierSettings()
    """Notifier process settings."""
    ui: UiSettings = UiSettings()
    """Web dashboard settings."""

    def with_bootstrap(self, bootstrap: str) -> GitopsConfig:
        """Return a copy talking to another broker (GITOPS_KAFKA_BOOTSTRAP, `gitops up`)."""
        kafka = self.kafka.model_copy(update={"bootstrap": bootstrap})
        return self.model_copy(update={"kafka": kafka})


ProviderName = Literal["github", "gitlab", "gitea", "bitbucket"]
