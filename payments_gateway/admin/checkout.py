from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from ..models import CheckoutSession, Customer, Event, Order, PaymentStatus, Refund, Transfer
from ..services.customers import create_customer, update_customer
from .base import ReadOnlyInline

CUSTOMER_FIELDS = ("email", "name", "metadata")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Customers; a change made here is announced (``customer.updated``) as one made through the API is."""

    list_display = ["email", "name", "uuid", "created"]
    search_fields = ["uuid", "email", "name"]
    list_filter = [("created", admin.DateFieldListFilter)]
    readonly_fields = ["uuid", "created", "updated"]

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in CUSTOMER_FIELDS if name in form.cleaned_data}
        if not change:
            created = create_customer(**fields)
            obj.pk, obj.uuid, obj.created, obj.updated = created.pk, created.uuid, created.created, created.updated
            obj._state.adding = False
            return
        # What really changed (a form may call "{}" changed from {}): no change, no customer.updated.
        stored = Customer.objects.get(pk=obj.pk)
        changed = {name: value for name, value in fields.items() if getattr(stored, name) != value}
        if changed:
            update_customer(obj, **changed)


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
    readonly_fields = ("tx_hash", "block_number", "asset", "amount", "confirmations", "status", "late", "reason",
                       "resolution", "detected_at")  # fmt: skip
    fields = readonly_fields
    verbose_name_plural = "transfers"


class SessionRefundInline(ReadOnlyInline):
    """The session's refunds."""

    model = Refund
    fk_name = "session"
    readonly_fields = ("uuid", "status", "amount", "address", "tx_hash", "created", "completed_at")
    fields = readonly_fields
    verbose_name_plural = "refunds"


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
        "quoted_at", "expires_at", "deposit_address", "late", "language", "created", "updated", "completed_at",
        "expired_at", "canceled_at", "excess",
    ]  # fmt: skip

    inlines = [SessionTransferInline, SessionRefundInline, SessionEventInline]
    actions = ["expire"]

    def get_urls(self):
        # Before the default patterns: "<path:object_id>/" would otherwise take "dashboard/".
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="payments_gateway_dashboard"),
            path(
                "<path:object_id>/refund-excess/",
                view(require_POST(self.refund_excess_view)),
                name="payments_gateway_session_refund_excess",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Overpayment")
    def excess(self, obj):
        """The excess of an overpaid session, with the one-click refund (a button of the page's own form)."""
        from ..services.refunds import default_amount

        if obj.payment_status != PaymentStatus.OVERPAID:
            return "None"
        left = default_amount(session=obj)
        over = obj.amount_received - obj.amount_due
        if not left:
            return f"{over} base units of {obj.asset} over the amount due (refunded)."
        url = reverse("admin:payments_gateway_session_refund_excess", args=[obj.pk])
        return format_html(
            '{} base units of {} over the amount due. <button type="submit" class="button" formaction="{}" '
            'formmethod="post" id="refund-excess">Refund the excess ({})</button>',
            over, obj.asset, url, left,
        )  # fmt: skip

    def refund_excess_view(self, request, object_id):
        """Refund an overpaid session's excess: the refund then waits for the customer's address (claim link)."""
        from ..services.refunds import create_refund

        if not request.user.has_perm("payments_gateway.add_refund"):
            raise PermissionDenied
        session = get_object_or_404(CheckoutSession, pk=object_id)
        if session.payment_status != PaymentStatus.OVERPAID:
            self.message_user(request, "This session is not overpaid.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk]))
        try:
            refund = create_refund(session=session, reason="Overpayment: the excess", user=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk]))
        self.log_change(request, session, f"Refund {refund.uuid} of the excess ({refund.amount}) created.")
        return HttpResponseRedirect(reverse("admin:payments_gateway_refund_change", args=[refund.pk]))

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
            self.log_change(request, session, "Expired by the merchant (admin action “Expire”).")
            done += 1
        self.message_user(request, f"Expired {done} session(s).", messages.SUCCESS)

    def has_add_permission(self, request, obj=None):
        return False  # sessions are created through the API or the shop, which allocate an address and a quote
