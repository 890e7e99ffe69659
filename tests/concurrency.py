"""Running test code on several threads at the same moment, each with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def run_together(n: int, function: Callable[[int], T]) -> list[T]:
    """Run ``function(i)`` for i in 0..n-1, each in its own thread, all released at the same moment; returns the
    results in order (the first exception a thread raised, if any, is raised here)."""
    barrier = threading.Barrier(n)

    def call(i: int) -> T:
        barrier.wait()
        try:
            return function(i)
        finally:
            connection.close()  # each thread's own database connection

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))
