"""The signed webhook receiver: ``POST /webhooks/<source>/``.

- :mod:`.schemes` verifies a request's signature (Standard Webhooks, HMAC-SHA256 hex).
- :mod:`.sources` reads ``PAYMENTS_GATEWAY["WEBHOOK_SOURCES"]`` into :class:`~.sources.Source` objects.
- :mod:`.views` stores each attempt and each event once, then hands the event to a task.
- :mod:`.processing` runs a source's handler on a stored event (once; failures retried with backoff).
- :mod:`.handlers` holds the built-in handlers (the ``transactions`` source).
"""
