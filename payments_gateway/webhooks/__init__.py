"""Webhooks: ``outgoing`` (signed events to the merchant's endpoints) and ``incoming`` (signed events received)."""
