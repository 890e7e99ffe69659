from django.contrib import admin

from ..models import CheckoutSession, Customer, Order


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
        "uuid", "order", "customer", "type", "status", "payment_status", "network", "asset", "amount_due",
        "amount_received", "amount_pending", "fiat_amount", "fiat_currency", "quote_rate", "quote_source",
        "quoted_at", "expires_at", "deposit_address", "late", "created", "updated", "completed_at", "expired_at",
        "canceled_at",
    ]  # fmt: skip

    def has_add_permission(self, request, obj=None):
        return False  # sessions are created through the API or the shop, which allocate an address and a quote
