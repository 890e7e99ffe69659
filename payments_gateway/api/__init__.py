"""The REST API (DRF) under ``/api/v1/``: sessions, transactions, customers, OpenAPI schema."""
