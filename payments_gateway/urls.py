"""Mount with ``path("", include("payments_gateway.urls"))`` (or under a prefix of your choice)."""

from django.urls import include, path

app_name = "payments_gateway"

urlpatterns: list = [
    path("api/v1/", include("payments_gateway.api.urls")),
]
