from django.contrib import admin

from ..models import WebhookEvent, WebhookRequest
from .base import ReadOnlyAdmin


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["source", "event_id", "type", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["source", "type", "status", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["event_id"]


@admin.register(WebhookRequest)
class WebhookRequestAdmin(ReadOnlyAdmin):
    list_display = ["source", "received_at", "remote_addr", "valid", "status_code", "outcome"]
    list_filter = ["source", "valid", "status_code", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["event__event_id", "outcome"]
