"""What every member of a consumer group is built from, whichever group it joins.

The syncer (`gitops-syncers`) and the notifier (`gitops-notifiers`) are both long-running
members of a Kafka consumer group: they build their consumer and producer from the same
settings, commit a partition's offsets only as far as its records were fully handled,
and answer probes and Prometheus on the same three paths. Those parts live here, once,
below both processes (which never import each other) and above `schemas`.
"""
