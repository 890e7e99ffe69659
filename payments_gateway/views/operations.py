"""``GET /health/`` (for load balancers and orchestrators) and ``GET /metrics`` (for Prometheus)."""

from __future__ import annotations

import hmac
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ..conf import gateway_settings
from ..operations import probes


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness in one answer: 200 when the database, the task broker and every network's scanner
    are fine, else 503; the body names each part and what is wrong with a failing one. Any answer at all means
    the process is alive."""
    checks: dict[str, Any] = {}
    database = probes.database_problem()
    checks["database"] = _part(database and f"unreachable ({database.split(':', 1)[0]})")
    broker = probes.broker_problem()
    checks["broker"] = _part(broker and f"{probes.broker_name()} unreachable ({broker.split(':', 1)[0]})")
    if database is None:
        for lag in probes.scanner_lags():
            checks[f"scanner:{lag.network}"] = _part(lag.problem) | {
                "lag_blocks": lag.blocks,
                "lag_seconds": lag.seconds,
            }
    else:
        checks["scanners"] = _part("unknown: the database is unreachable")
    healthy = all(part["status"] == "ok" for part in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format, for ``Authorization: Bearer <METRICS_TOKEN>``. Without a configured token the
    endpoint does not exist (404); a missing or wrong token is a 401 saying what to send."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from ..operations.metrics import registry

    token = gateway_settings.METRICS_TOKEN
    if token is None:
        return JsonResponse({"error": "Not found."}, status=404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = JsonResponse(
            {
                "error": "A valid metrics token is required: send the header "
                "'Authorization: Bearer <PAYMENTS_GATEWAY[\"METRICS_TOKEN\"]>'."
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def _part(problem: str | None) -> dict[str, Any]:
    return {"status": "ok"} if not problem else {"status": "fail", "error": problem}
