"""Mount with ``path("", include("payments_gateway.urls"))`` (or under a prefix of your choice)."""

app_name = "payments_gateway"

urlpatterns: list = []
