from django.urls import path

from . import subscriptions, views, webhooks

app_name = "shop"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("products/<slug:slug>/", views.product_detail, name="product"),
    path("products/<slug:slug>/add/", views.cart_add, name="cart_add"),
    path("products/<slug:slug>/subscribe/", subscriptions.subscribe, name="subscribe"),
    path("subscribed/", subscriptions.subscribed, name="subscribed"),
    path("cart/", views.cart_view, name="cart"),
    path("cart/order/", views.place_order, name="place_order"),
    path("orders/<uuid:uuid>/", views.order_detail, name="order"),
    path("orders/<uuid:uuid>/pay/", views.pay_with_crypto, name="pay_with_crypto"),
    path("orders/<uuid:uuid>/paid/", views.payment_success, name="payment_success"),
    path("shop/webhooks/", webhooks.receive, name="webhooks"),
]
