"""Ingestion from reconciliation engines over NATS JetStream."""
