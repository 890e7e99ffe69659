"""The log of every HTTP attempt of outgoing webhook deliveries, searchable on its own (read-only)."""

from django.contrib import admin

from ..models import WebhookAttempt
from .base import ReadOnlyAdmin


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ["delivery", "started_at", "status_code", "success", "duration_ms", "error"]
    list_filter = ["success", ("started_at", admin.DateFieldListFilter)]
    search_fields = ["delivery__event__id", "delivery__endpoint__url"]
    list_select_related = ["delivery__event", "delivery__endpoint"]
