from django.contrib import admin, messages
from django.utils.html import format_html

from ..models import WebhookEvent, WebhookRequest
from ..webhooks.incoming.processing import reprocess
from .base import ReadOnlyAdmin


def _body_text(obj) -> str:
    return bytes(obj.body).decode("utf-8", "replace")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    """Incoming events, each stored once; "reprocess" runs the handler again (after a fix, or a retry cap)."""

    list_display = [
        "source", "event_id", "type", "status", "attempts", "received_at", "processed_at", "next_attempt_at",
    ]  # fmt: skip
    list_filter = ["source", "type", "status", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["event_id"]
    readonly_fields = ["body_text", "result_text"]
    exclude = ["body", "result"]
    actions = ["reprocess_events"]

    def has_reprocess_permission(self, request) -> bool:
        # The log stays read-only; running a handler again is an operator's act, like changing an event.
        return request.user.has_perm("payments_gateway.change_webhookevent")

    @admin.display(description="body")
    def body_text(self, obj: WebhookEvent) -> str:
        return format_html("<pre>{}</pre>", _body_text(obj))

    @admin.display(description="result")
    def result_text(self, obj: WebhookEvent) -> str:
        return format_html("<pre>{}</pre>", obj.result)

    @admin.action(description="Reprocess the selected events (run their handler again)", permissions=["reprocess"])
    def reprocess_events(self, request, queryset):
        count = reprocess(queryset)
        self.message_user(request, f"{count} event(s) queued for reprocessing.", messages.SUCCESS)


@admin.register(WebhookRequest)
class WebhookRequestAdmin(ReadOnlyAdmin):
    """Every POST to the receiver, valid or not: the audit log, kept for ``WEBHOOK_LOG_RETENTION``. A request not
    verified keeps only an excerpt of its body and headers."""

    list_display = ["source", "received_at", "remote_addr", "valid", "status_code", "outcome", "event"]
    list_filter = ["source", "valid", "status_code", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["event__event_id", "outcome"]
    readonly_fields = ["body_text"]
    exclude = ["body"]
    list_select_related = ["event"]

    @admin.display(description="body")
    def body_text(self, obj: WebhookRequest) -> str:
        kept = len(bytes(obj.body))
        if kept < obj.body_size:
            return format_html(
                "<p>Only the first {} of {} bytes are kept: the request was not verified, so it may be anyone's "
                "(an unknown source or a bad signature).</p><pre>{}</pre>",
                kept, obj.body_size, _body_text(obj),
            )  # fmt: skip
        return format_html("<pre>{}</pre>", _body_text(obj))
