# The gitops-pipeline image: one `gitops` CLI that runs as receiver or syncer.
#
#   docker build -t gitops-pipeline .
#   docker run --rm -p 8080:8080 -v $PWD/gitops.yaml:/etc/gitops/gitops.yaml:ro \
#     -e GITOPS_CONFIG=/etc/gitops/gitops.yaml gitops-pipeline receiver
#
# Two stages: the build stage installs the package and its dependencies into a virtual
# environment; the runtime stage copies only that environment, so no pip cache, source
# tree or build tooling ships. The runtime runs as an unprivileged user (uid 10001, the
# uid the Helm chart's securityContext expects) and works on a read-only root filesystem
# as long as HOME (or /tmp) and the syncer's cache_dir are writable.

ARG PYTHON_IMAGE=python:3.11-slim
ARG GO_IMAGE=golang:1.26
# The sops the syncer decrypts SOPS-encrypted manifests with (the version the tests run).
ARG SOPS_VERSION=v3.13.3

FROM ${GO_IMAGE} AS sops
ARG SOPS_VERSION
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w" \
    github.com/getsops/sops/v3/cmd/sops@${SOPS_VERSION}

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/gitops
WORKDIR /src
# Metadata first, then the packages listed in [tool.setuptools.packages.find].
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY credentials ./credentials
COPY members ./members
COPY receiver ./receiver
COPY syncer ./syncer
COPY devcluster ./devcluster
COPY notifier ./notifier
COPY dashboard ./dashboard
COPY gitops ./gitops
RUN /opt/gitops/bin/pip install . \
    && /opt/gitops/bin/gitops --help > /dev/null

FROM ${PYTHON_IMAGE}
# git: the syncer's renderers and users' debugging sessions expect the real CLI.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gitops \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/gitops --create-home \
        --shell /usr/sbin/nologin gitops
COPY --from=build /opt/gitops /opt/gitops
COPY --from=sops /out/sops /usr/local/bin/sops
ENV PATH=/opt/gitops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/gitops \
    GIT_CONFIG_NOSYSTEM=1
USER 10001:10001
WORKDIR /home/gitops
# 8080: receiver webhooks, /healthz, /readyz, /metrics. 8081: the syncer's probes and metrics.
EXPOSE 8080 8081
ENTRYPOINT ["gitops"]
CMD ["receiver"]
