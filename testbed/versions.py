"""Every version the test bed builds, pinned in this one place.

The build scripts write the wrapper `go.mod` and `pom.xml` files from these pins, and the
cache is keyed by them, so changing a line here rebuilds exactly the part it names.
"""

from __future__ import annotations

KUBERNETES = "v1.37.2"
"""kube-apiserver, kube-controller-manager and kube-scheduler (`k8s.io/kubernetes`)."""

KUBERNETES_STAGING = "v0.37.2"
"""The staging modules (`k8s.io/api`, `k8s.io/apimachinery`, …) released with KUBERNETES."""

ETCD = "v3.7.3"
"""`go.etcd.io/etcd/server/v3`, whose module root is the etcd main package."""

KWOK = "v0.8.0"
"""`sigs.k8s.io/kwok`: fake nodes, so Pods are scheduled, run and complete."""

SOPS = "v3.13.3"
"""`github.com/getsops/sops/v3`: decrypts SOPS-encrypted manifests (the syncer runs the binary)."""

AGE = "v1.3.2"
"""`filippo.io/age`: `age-keygen` makes the identities the SOPS tests encrypt to."""

KAFKA = "4.4.0"
"""Apache Kafka (`org.apache.kafka:kafka_2.13`), run as one KRaft broker and controller."""

LOG4J = "2.26.1"
"""The log4j2 backend Kafka's slf4j logging writes through."""

SLF4J = "2.0.17"
"""slf4j-api 2.x, which the log4j2 binding needs (Kafka itself brings 1.7)."""
