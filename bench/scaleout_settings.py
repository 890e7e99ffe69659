"""Settings of bench/scaleout.py's processes: the example shop's, with ``BENCH_Q_WORKERS`` cluster workers."""

import os

from example_shop.settings import *  # noqa: F403
from example_shop.settings import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "workers": int(os.environ.get("BENCH_Q_WORKERS", "2"))}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
