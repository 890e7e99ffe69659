"""Subscriptions in the admin: filters, each period's session inline, and cancel actions that ask for a reason
and record it in the admin log (``LogEntry``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from ..models import Subscription, SubscriptionPeriod, SubscriptionStatus
from .base import ReadOnlyAdmin, ReadOnlyInline


class PeriodInline(ReadOnlyInline):
    """Each period with the session that collects it, oldest first."""

    model = SubscriptionPeriod
    fields = readonly_fields = ("number", "start", "end", "session_link", "session_status", "paid_at")
    ordering = ["number"]
    verbose_name_plural = "periods and their sessions"

    @admin.display(description="session")
    def session_link(self, period: SubscriptionPeriod) -> str:
        url = reverse("admin:payments_gateway_checkoutsession_change", args=[period.session_id])
        return format_html('<a href="{}">{}</a>', url, period.session.uuid)

    @admin.display(description="session status")
    def session_status(self, period: SubscriptionPeriod) -> str:
        return f"{period.session.status}/{period.session.payment_status}"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("session")


@admin.register(SubscriptionPeriod)
class SubscriptionPeriodAdmin(ReadOnlyAdmin):
    """Every billing period and its session; made by the subscription service, never by hand."""

    list_display = ["subscription", "number", "start", "end", "session", "paid_at"]
    list_filter = [("paid_at", admin.EmptyFieldListFilter), ("start", admin.DateFieldListFilter)]
    search_fields = ["subscription__uuid", "session__uuid"]
    list_select_related = ["subscription", "session"]


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the admin log."
    )


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "uuid", "description", "customer", "status", "amount", "currency", "interval", "interval_count",
        "current_period_end", "cancel_at_period_end", "created",
    ]  # fmt: skip
    list_filter = ["status", "interval", "currency", "cancel_at_period_end", ("created", admin.DateFieldListFilter)]
    search_fields = ["uuid", "description", "customer__email", "periods__session__uuid"]
    list_select_related = ["customer"]
    readonly_fields = [
        "uuid", "customer", "description", "amount", "currency", "interval", "interval_count", "payment_methods",
        "status", "billing_anchor", "current_period_start", "current_period_end", "cancel_at_period_end",
        "canceled_at", "ended_at", "cancellation_reason", "success_url", "cancel_url", "metadata", "created",
        "updated",
    ]  # fmt: skip
    inlines = [PeriodInline]
    actions = ["cancel_now", "cancel_at_period_end"]

    def has_add_permission(self, request, obj=None):
        return False  # created by a createSubscription session (API or shop), with its first period

    @admin.action(description="Cancel selected subscriptions now…", permissions=["change"])
    def cancel_now(self, request, queryset):
        return self._cancel(request, queryset, at_period_end=False)

    @admin.action(description="Cancel selected subscriptions at the end of their period…", permissions=["change"])
    def cancel_at_period_end(self, request, queryset):
        return self._cancel(request, queryset, at_period_end=True)

    def _cancel(self, request, queryset, *, at_period_end: bool):
        """First a page asking for the reason; on its submit, cancel each and log the reason."""
        from ..services.subscriptions import cancel_subscription

        form = CancelForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/payments_gateway/subscription_cancel.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Cancel subscriptions" + (" at the end of their period" if at_period_end else " now"),
                    "opts": self.model._meta,
                    "subscriptions": queryset.exclude(status=SubscriptionStatus.CANCELED),
                    "form": form,
                    "action": request.POST.get("action"),
                    "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        reason = form.cleaned_data["reason"]
        done = 0
        for subscription in queryset:
            try:
                cancel_subscription(subscription, at_period_end=at_period_end)
            except ValidationError as exc:
                self.message_user(request, f"{subscription.uuid}: {' '.join(exc.messages)}", messages.WARNING)
                continue
            when = "at the end of its period" if at_period_end else "now"
            self.log_change(request, subscription, f"Canceled {when}. Reason: {reason}")
            done += 1
        self.message_user(request, f"Canceled {done} subscription(s).", messages.SUCCESS)
        return None
