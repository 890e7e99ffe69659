"""Mount with ``path("", include("payments_gateway.urls"))`` (or under a prefix of your choice)."""

from django.urls import include, path

from .views import checkout, choose, layout, operations, refunds, subscriptions
from .webhooks.incoming.views import receive_webhook

app_name = "payments_gateway"

urlpatterns: list = [
    path("api/v1/", include("payments_gateway.api.urls")),
    path("pay/theme.css", layout.theme, name="checkout-theme"),
    path("pay/<uuid:uuid>/", checkout.checkout, name="checkout"),
    path("pay/<uuid:uuid>/status", checkout.status, name="checkout-status"),
    path("pay/<uuid:uuid>/events", checkout.events, name="checkout-events"),
    path("pay/<uuid:uuid>/qr.png", checkout.qr, name="checkout-qr"),
    path("pay/<uuid:uuid>/method", choose.choose, name="checkout-method"),
    path("pay/<uuid:uuid>/customer", checkout.customer, name="checkout-customer"),
    path("pay/<uuid:uuid>/cancel", checkout.cancel, name="checkout-cancel"),
    path("pay/<uuid:uuid>/continue", checkout.success, name="checkout-success"),
    path("pay/<uuid:uuid>/test-pay", checkout.test_pay, name="checkout-test-pay"),
    path("subscriptions/<str:token>/", subscriptions.subscription, name="subscription"),
    path("subscriptions/<str:token>/cancel", subscriptions.cancel, name="subscription-cancel"),
    path("refund/<str:token>/", refunds.refund_claim, name="refund-claim"),
    path("webhooks/<str:source>/", receive_webhook, name="webhook-receive"),
    path("health/", operations.health, name="health"),
    path("metrics", operations.metrics, name="metrics"),
]
