"""URLconf of bench/receiver.py's server: the app's receiver, and the baseline it is compared with."""

from django.db import transaction
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
@transaction.non_atomic_requests
def baseline(request):
    """The least a receiver can do: read the body and insert one row."""
    from payments_gateway.models import WebhookRequest

    body = request.read()
    WebhookRequest.objects.create(source="baseline", body=body, headers={}, valid=False, status_code=200)
    return JsonResponse({"status": "ok"})


def handle(event, payload):
    """The bench source's handler (the bench runs no worker; tasks stay queued)."""


urlpatterns = [
    path("baseline/", baseline),
    path("", include("payments_gateway.urls")),
]
