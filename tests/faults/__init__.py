"""Fault injection: two groups of real processes on one PostgreSQL database, one Redis and one chain, while
processes are killed, database connections terminated and an RPC URL flaps (``make test`` runs it)."""

#: Lines the suite reports at the end of the pytest run (tests/faults/conftest.py prints them).
REPORT: list[str] = []
