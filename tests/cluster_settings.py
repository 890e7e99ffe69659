"""Settings of the processes a test starts as "the deployment" (``manage.py qcluster``, an ASGI server): the test
suite's settings, on the database ``DATABASE_URL`` names (the test database), with the ``PAYMENTS_GATEWAY`` dict the
test passes as JSON in ``PAYMENTS_GATEWAY_TEST_OVERRIDE``."""

import json
import os

from tests.settings import *  # noqa: F403

PAYMENTS_GATEWAY = json.loads(os.environ["PAYMENTS_GATEWAY_TEST_OVERRIDE"])
# A worker per network's follower, and one for everything else (the W003 check's rule).
Q_CLUSTER = {**Q_CLUSTER, "workers": len(PAYMENTS_GATEWAY.get("NETWORKS", {})) + 1}  # noqa: F405
