"""Admin for outgoing webhooks: endpoints (secret shown once on the answering page, rotate, send test event), events
and deliveries with their logs, redelivery. Disabled endpoints are announced on every outgoing-webhook page."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from ..models import Event, SignatureFormat, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ..models.outgoing import EVENT_TYPES
from ..webhooks.outgoing import delivery as delivery_service
from ..webhooks.outgoing import signing, ssrf
from .base import ReadOnlyAdmin, ReadOnlyInline
from .secrets import secret_page

RECENT_DELIVERIES = 50


class WarnsOfDisabledEndpoints(admin.ModelAdmin):
    """An outgoing-webhook list page: it tells which endpoints were disabled and why."""

    def changelist_view(self, request, extra_context=None):
        warn_disabled_endpoints(request)
        return super().changelist_view(request, extra_context)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WarnsOfDisabledEndpoints):
    list_display = ["url", "description", "signature_format", "active", "disabled_reason", "failing_since", "created"]
    list_filter = ["active", "signature_format"]
    search_fields = ["url", "uuid", "description"]
    readonly_fields = ["uuid", "disabled_reason", "disabled_at", "failing_since", "created", "all_deliveries"]
    actions = ["rotate_secret", "send_test_event", "enable"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = WebhookEndpointForm
        return super().get_form(request, obj, change, **kwargs)

    def get_inlines(self, request, obj):
        return [EndpointDeliveryInline] if obj else []

    @property
    def action_form(self):
        return TestEventActionForm

    def save_model(self, request, obj, form, change):
        if change and "active" in form.changed_data and obj.active:
            obj.disabled_reason, obj.disabled_at, obj.failing_since = "", None, None
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return _secret_page(request, self, [obj], title="Webhook endpoint created", intro="The endpoint was created.")

    @admin.display(description="Delivery log")
    def all_deliveries(self, obj):
        url = reverse("admin:payments_gateway_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html(
            '<a href="{}">All deliveries to this endpoint</a> (the {} latest are below)', url, RECENT_DELIVERIES
        )

    @admin.action(description="Rotate signing secret (old one stays valid for the overlap)")
    def rotate_secret(self, request, queryset):
        endpoints = list(queryset)
        for endpoint in endpoints:
            signing.rotate_secret(endpoint)
        until = min(e.previous_secret_expires for e in endpoints)
        intro = f"Secret rotated; the previous one stays valid until {until:%Y-%m-%d %H:%M} UTC."
        return _secret_page(request, self, endpoints, title="Signing secret rotated", intro=intro)

    @admin.action(description="Send test event (choose its type)")
    def send_test_event(self, request, queryset):
        event_type = request.POST.get("event_type", "")
        if event_type not in EVENT_TYPES:
            self.message_user(request, "Choose the event type to send.", messages.ERROR)
            return
        for endpoint in queryset:
            event = delivery_service.send_test_event(endpoint, event_type)
            self.message_user(request, f"Test event {event.id} ({event_type}) queued for {endpoint.url}.")

    @admin.action(description="Enable (resume held deliveries)")
    def enable(self, request, queryset):
        count = queryset.filter(active=False).update(
            active=True, disabled_reason="", disabled_at=None, failing_since=None
        )
        self.message_user(request, f"{count} endpoint(s) enabled.")


@admin.register(Event)
class EventAdmin(WarnsOfDisabledEndpoints, ReadOnlyAdmin):
    list_display = ["id", "type", "session", "livemode", "created"]
    list_filter = ["type", "livemode", ("created", admin.DateFieldListFilter)]
    search_fields = ["id", "session__uuid"]
    list_select_related = ["session"]
    actions = ["redeliver"]

    def get_inlines(self, request, obj):
        return [EventDeliveryInline]

    @admin.action(description="Redeliver to every endpoint it went to")
    def redeliver(self, request, queryset):
        count = 0
        with transaction.atomic():
            for event in queryset:
                sent = delivery_service.redeliver(event)
                count += len(sent)
                self.log_change(request, event, f"Redelivered by the merchant to {len(sent)} endpoint(s).")
        self.message_user(request, f"{count} delivery(ies) queued again.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WarnsOfDisabledEndpoints, ReadOnlyAdmin):
    list_display = [
        "event",
        "endpoint",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created",
    ]
    list_filter = ["state", "endpoint", ("created", admin.DateFieldListFilter)]
    search_fields = ["event__id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    inlines = []
    actions = ["redeliver"]

    def get_inlines(self, request, obj):
        return [AttemptInline]

    @admin.action(description="Redeliver")
    def redeliver(self, request, queryset):
        with transaction.atomic():
            for delivery in queryset.select_related("event", "endpoint"):
                delivery_service.redeliver(delivery.event, [delivery.endpoint])
                self.log_change(request, delivery, f"Redelivered by the merchant to {delivery.endpoint.url}.")
        self.message_user(request, f"{queryset.count()} delivery(ies) queued again.")


# --- forms, inlines, helpers ----------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", label="URL")
    enabled_events = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )
    signature_format = forms.ChoiceField(
        choices=SignatureFormat.choices,
        initial=SignatureFormat.STANDARD_WEBHOOKS,
        required=False,
        help_text="Standard Webhooks unless the receiver was written for hex HMAC-SHA256 signatures "
        "(X-Webhook-Signature-256: sha256=...). Those are signed with the current secret only, also while it rotates.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "enabled_events", "signature_format", "active"]

    def clean_signature_format(self):
        return self.cleaned_data.get("signature_format") or SignatureFormat.STANDARD_WEBHOOKS

    def clean_url(self):
        url = self.cleaned_data["url"]
        ssrf.validate_endpoint_url(url)
        return url


class TestEventActionForm(helpers.ActionForm):
    event_type = forms.ChoiceField(
        choices=[("", "event type (for “Send test event”)")] + [(t, t) for t in EVENT_TYPES], required=False
    )


class _RecentFormSet(BaseInlineFormSet):
    def get_queryset(self):
        return super().get_queryset()[:RECENT_DELIVERIES]


class EventDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    readonly_fields = ("endpoint", "state", "attempts", "last_status_code", "last_error", "next_attempt_at")
    fields = readonly_fields
    verbose_name_plural = "Deliveries"


class EndpointDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    formset = _RecentFormSet
    readonly_fields = ("event", "state", "attempts", "last_status_code", "last_error", "next_attempt_at", "created")
    fields = readonly_fields
    verbose_name_plural = f"Latest {RECENT_DELIVERIES} deliveries"


class AttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    show_change_link = False
    readonly_fields = ("started_at", "status_code", "success", "duration_ms", "error", "response_excerpt")
    fields = readonly_fields
    verbose_name_plural = "Attempts"


def _secret_page(request, model_admin, endpoints: list[WebhookEndpoint], *, title: str, intro: str):
    """The endpoints' signing secrets, shown once on the answering page (never in a message: a cookie)."""
    return secret_page(
        request,
        model_admin.admin_site,
        title=title,
        intro=intro,
        secrets=[(endpoint.url, endpoint.secret) for endpoint in endpoints],
        back_url=reverse("admin:payments_gateway_webhookendpoint_changelist"),
        back_label="Webhook endpoints",
    )


def warn_disabled_endpoints(request) -> None:
    """Tell the merchant, on the webhook pages, which endpoints were disabled and why."""
    for endpoint in WebhookEndpoint.objects.filter(active=False).exclude(disabled_reason="")[:10]:
        messages.warning(
            request,
            f"Webhook endpoint {endpoint.url} was disabled: {endpoint.disabled_reason} "
            "Fix it, then enable it again (held deliveries resume).",
        )
