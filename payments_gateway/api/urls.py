"""``/api/v1/`` routes (mounted by ``payments_gateway.urls``)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from . import checkout, webhooks
from .errors import json_error

router = SimpleRouter()
router.register("sessions", checkout.SessionViewSet, basename="session")
router.register("customers", checkout.CustomerViewSet, basename="customer")
router.register("webhook-endpoints", webhooks.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", webhooks.EventViewSet, basename="event")


def not_found(request, *args, **kwargs):
    return json_error(404, f"No API endpoint {request.path}.", "not_found")


urlpatterns = [
    *router.urls,
    path("transactions/<uuid:uuid>/status/", checkout.TransactionStatusView.as_view(), name="transaction-status"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    re_path(r"^", not_found),
]
