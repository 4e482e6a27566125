"""Outbound integrations (issue 12): the Notification Hub and the RAG feed.

An entry that owes a downstream system an event gets an outbox row in its own appending
transaction (hook.py); the dispatcher inside `indelible up` delivers the rows as Standard
Webhooks (webhooks.py), retries by a schedule (retry.py), and records every outcome as a
ledger entry on the discrepancy's stream (outcomes.py). What is sent is rendered from the
ledger (render.py); which entry owes what to whom is events.py.
"""
