"""``/api/v1/`` routes (mounted by ``payments_gateway.urls``)."""

from django.urls import Resolver404, path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from . import checkout, reconcile, subscriptions, webhooks
from .errors import exception_handler, json_error
from .schema import SCHEMA_SETTINGS

router = SimpleRouter()
router.register("sessions", checkout.SessionViewSet, basename="session")
router.register("customers", checkout.CustomerViewSet, basename="customer")
router.register("subscriptions", subscriptions.SubscriptionViewSet, basename="subscription")
router.register("webhook-endpoints", webhooks.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", webhooks.EventViewSet, basename="event")
router.register("transfers", reconcile.TransferViewSet, basename="transfer")
router.register("refunds", reconcile.RefundViewSet, basename="refund")


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema; its errors (a POST: 405) in the API's JSON shape, not as YAML."""

    custom_settings = SCHEMA_SETTINGS

    def get_exception_handler(self):
        return exception_handler


@csrf_exempt  # it changes nothing; without this a POST here got the CSRF failure page (HTML 403), not this 404
def not_found(request, *args, **kwargs):
    """Any path under the API that is no endpoint: a JSON 404 (naming the endpoint meant, for a missing slash)."""
    message = f"No API endpoint {request.path}."
    if not request.path.endswith("/"):
        try:
            if resolve(request.path_info + "/").func is not not_found:
                message += f" Did you mean {request.path}/ (with the trailing slash)?"
        except Resolver404:  # not mounted under the root URLconf as expected
            pass
    return json_error(404, message, "not_found")


urlpatterns = [
    *router.urls,
    path("transactions/<uuid:uuid>/status/", checkout.TransactionStatusView.as_view(), name="transaction-status"),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    re_path(r"^", not_found),
]
