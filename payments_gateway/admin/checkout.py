from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import CheckoutSession, Customer, Event, Order, Transfer
from .base import ReadOnlyInline


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "uuid", "created"]
    search_fields = ["uuid", "email", "name"]
    list_filter = [("created", admin.DateFieldListFilter)]
    readonly_fields = ["uuid", "created", "updated"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "description", "amount", "currency", "status", "customer", "created"]
    list_filter = ["status", "currency", ("created", admin.DateFieldListFilter)]
    search_fields = ["uuid", "reference", "description", "customer__email"]
    readonly_fields = ["uuid", "created", "updated"]
    list_select_related = ["customer"]


class SessionTransferInline(ReadOnlyInline):
    """The session's on-chain payments, newest first."""

    model = Transfer
    fk_name = "session"
    readonly_fields = ("tx_hash", "block_number", "asset", "amount", "confirmations", "status", "late", "detected_at")
    fields = readonly_fields
    verbose_name_plural = "transfers"


class SessionEventInline(ReadOnlyInline):
    """The session's timeline: every event written for it, oldest first."""

    model = Event
    readonly_fields = ("created", "type", "id")
    fields = readonly_fields
    ordering = ["created"]
    verbose_name_plural = "timeline (events)"


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(admin.ModelAdmin):
    list_display = [
        "uuid", "order", "status", "payment_status", "network", "asset", "amount_due", "amount_received", "late",
        "expires_at", "created",
    ]  # fmt: skip
    list_filter = [
        "status",
        "payment_status",
        "network",
        "asset",
        "late",
        ("created", admin.DateFieldListFilter),
    ]
    search_fields = ["uuid", "order__reference", "deposit_address__address", "transfers__tx_hash"]
    list_select_related = ["order", "deposit_address"]
    readonly_fields = [
        "uuid", "order", "customer", "type", "status", "payment_status", "payment_methods", "network", "asset",
        "amount_due", "amount_received", "amount_pending", "fiat_amount", "fiat_currency", "quote_rate", "quote_source",
        "quoted_at", "expires_at", "deposit_address", "late", "created", "updated", "completed_at", "expired_at",
        "canceled_at",
    ]  # fmt: skip

    inlines = [SessionTransferInline, SessionEventInline]
    actions = ["expire"]

    def get_urls(self):
        # Before the default patterns: "<path:object_id>/" would otherwise take "dashboard/".
        dashboard = path(
            "dashboard/", self.admin_site.admin_view(self.dashboard_view), name="payments_gateway_dashboard"
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request):
        """Totals received, a chart per day and asset, sessions by status and scanner lag (staff only)."""
        from ..services.balances import forwarder_overviews
        from ..services.dashboard import dashboard_data

        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Payments dashboard",
            "opts": self.model._meta,
            **dashboard_data(),
            "forwarders": forwarder_overviews(),  # read on chain: unswept balances, the relayer's gas
        }
        return TemplateResponse(request, "admin/payments_gateway/dashboard.html", context)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "checkout_page"]

    @admin.display(description="Checkout page")
    def checkout_page(self, obj):
        url = reverse("payments_gateway:checkout", args=[obj.uuid])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.action(description="Expire selected open sessions now")
    def expire(self, request, queryset):
        from ..services.payments import expire_session

        done = 0
        for session in queryset.filter(status="open"):
            try:
                expire_session(session)
            except ValueError:  # became complete or expired meanwhile
                continue
            done += 1
        self.message_user(request, f"Expired {done} session(s).", messages.SUCCESS)

    def has_add_permission(self, request, obj=None):
        return False  # sessions are created through the API or the shop, which allocate an address and a quote
