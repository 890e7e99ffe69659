"""Customer-facing pages of the gateway."""
