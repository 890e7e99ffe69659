from django.contrib import admin

from ..models import Event, WebhookDelivery, WebhookEndpoint
from .base import ReadOnlyAdmin


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "session", "livemode", "created"]
    list_filter = ["type", "livemode", ("created", admin.DateFieldListFilter)]
    search_fields = ["id", "session__uuid"]
    list_select_related = ["session"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "description", "active", "disabled_reason", "failing_since", "created"]
    list_filter = ["active"]
    search_fields = ["url", "uuid", "description"]
    exclude = ["secret", "previous_secret", "previous_secret_expires"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "event",
        "endpoint",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created",
    ]
    list_filter = ["state", ("created", admin.DateFieldListFilter)]
    search_fields = ["event__id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
