"""Distinct names for the ids that flow through the pipeline, so they are not mixed up."""

from typing import NewType

CommitSha = NewType("CommitSha", str)
"""A full 40-hex git commit id."""

DeliveryId = NewType("DeliveryId", str)
"""The Git host's id for one webhook delivery (e.g. GitHub's X-GitHub-Delivery)."""

AppName = NewType("AppName", str)
"""The key of an app under `apps:` in the configuration; also the Kafka key of its requests."""
