"""Webhook receiver: verify, normalise and publish pushes from Git hosts to Kafka."""
