"""Routes of the REST API (mounted at ``api/v1/`` by ``payments_gateway.urls``)."""

from rest_framework.routers import SimpleRouter

from . import webhooks

router = SimpleRouter()
router.register("webhook-endpoints", webhooks.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", webhooks.EventViewSet, basename="event")

urlpatterns = router.urls
