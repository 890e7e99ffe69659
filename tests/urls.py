"""URLs of the test suite: the admin, the gateway where README mounts it, and the example shop's pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("payments_gateway.urls")),
    path("", include("example_shop.shop.urls")),
]
