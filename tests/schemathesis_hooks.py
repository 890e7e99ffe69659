"""Schemathesis hooks for tests/test_api_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Each generated ``Idempotency-Key`` that is well formed is made unique per request. Why: the API's contract
(DESIGN.md) answers a key reused with a different request with 400, and schemathesis draws short keys ("0") again
and again for different bodies, so it would report that documented answer as "a valid request rejected". The key
stays schema-valid (printable ASCII, at most 255 characters); malformed keys are left as drawn, so their 400 is
still checked.
"""

import itertools
import os
import re

import schemathesis

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_counter = itertools.count()
# The API's own rule (payments_gateway.api.idempotency.KEY_PATTERN), passed in by the test: this module is loaded
# by the schemathesis process, where Django is not set up.
_valid = re.compile(os.environ["IDEMPOTENCY_KEY_PATTERN"].replace("^", r"\A").replace("$", r"\Z"))


@schemathesis.hook
def before_call(context, case, kwargs):
    key = (case.headers or {}).get(HEADER)
    if isinstance(key, str) and _valid.match(key) and len(key) <= MAX_KEY_LENGTH:
        case.headers[HEADER] = f"{key[: MAX_KEY_LENGTH - 12]}-{next(_counter):011d}"
