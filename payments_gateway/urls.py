"""Mount with ``path("", include("payments_gateway.urls"))`` (or under a prefix of your choice)."""

from django.urls import path

from .webhooks.incoming.views import receive_webhook

app_name = "payments_gateway"

urlpatterns: list = [
    path("webhooks/<str:source>/", receive_webhook, name="webhook-receive"),
]
