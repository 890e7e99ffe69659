"""Shop pages: products, cart, order placement and the order page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from payments_gateway.models import Order

from .cart import MAX_QUANTITY, Cart
from .models import Product, ShopOrderLine


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, initial=1)


class CartUpdateForm(QuantityForm):
    product = forms.IntegerField(min_value=1)


def product_list(request):
    return render(request, "shop/product_list.html", {"products": Product.objects.all()})


def product_detail(request, slug):
    product = get_object_or_404(Product, slug=slug)
    return render(request, "shop/product_detail.html", {"product": product, "form": QuantityForm()})


@require_POST
def cart_add(request, slug):
    product = get_object_or_404(Product, slug=slug)
    form = QuantityForm(request.POST)
    if not form.is_valid() or form.cleaned_data["quantity"] < 1:
        messages.error(request, f"Choose a quantity between 1 and {MAX_QUANTITY}.")
        return redirect("shop:product", slug=slug)
    Cart(request.session).add(product, form.cleaned_data["quantity"])
    messages.success(request, f"Added {product.name} to your cart.")
    return redirect("shop:cart")


def cart_view(request):
    cart = Cart(request.session)
    if request.method == "POST":
        form = CartUpdateForm(request.POST)
        if form.is_valid():
            # 404 for a product that is not (or no longer) for sale, never a traceback for a bad id.
            cart.set(get_object_or_404(Product, pk=form.cleaned_data["product"]), form.cleaned_data["quantity"])
        elif "product" in form.errors:
            messages.error(request, "That product is not in your cart.")
        else:
            messages.error(request, f"Choose a quantity between 0 and {MAX_QUANTITY}.")
        return redirect("shop:cart")
    return render(request, "shop/cart.html", {"cart": cart, "lines": cart.lines()})


@require_POST
def place_order(request):
    cart = Cart(request.session)
    lines = cart.lines()
    if not lines:
        messages.error(request, "Your cart is empty.")
        return redirect("shop:cart")
    currencies = {line.product.currency for line in lines}
    if len(currencies) != 1:
        messages.error(request, "All items of one order must be priced in one currency.")
        return redirect("shop:cart")
    with transaction.atomic():
        order = Order.objects.create(
            amount=cart.total,
            currency=currencies.pop(),
            description=", ".join(f"{line.quantity} × {line.product.name}" for line in lines)[:500],
        )
        order.reference = f"SHOP-{order.pk:06d}"
        order.save(update_fields=["reference"])
        ShopOrderLine.objects.bulk_create(
            ShopOrderLine(order=order, product=line.product, quantity=line.quantity, unit_price=line.product.price)
            for line in lines
        )
    cart.clear()
    return redirect("shop:order", uuid=order.uuid)


def order_detail(request, uuid):
    order = get_object_or_404(Order, uuid=uuid)
    return render(
        request,
        "shop/order_detail.html",
        {"order": order, "lines": order.shop_lines.select_related("product")},
    )
