"""Operating the gateway: what ``payments_gateway_check``, ``GET /health/`` and ``GET /metrics`` report.

- :mod:`.probes`: the facts, each read once, shared by the three: the database, the task broker, django-q2 clusters
  and schedules, each network's scanner lag, the webhook delivery backlog.
- :mod:`.check`: ``payments_gateway_check``'s findings (also every RPC URL and deposit scheme, read on chain now).
- :mod:`.metrics`: the Prometheus collector; it reads the database at scrape time, so every process serves the
  same figures.
"""
