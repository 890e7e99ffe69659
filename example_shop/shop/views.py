"""Shop pages: products, cart, order placement and the order page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from payments_gateway.conf import gateway_settings
from payments_gateway.models import Order, SessionStatus
from payments_gateway.money import format_units
from payments_gateway.pricing import RateUnavailable
from payments_gateway.ratelimit import rate_limit
from payments_gateway.services.sessions import create_session, payment_in_progress

from .cart import MAX_QUANTITY, Cart
from .models import Product, ShopOrderLine


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, initial=1)


class CartUpdateForm(QuantityForm):
    product = forms.IntegerField(min_value=1)


def product_list(request):
    return render(request, "shop/product_list.html", {"products": Product.objects.all()})


def product_detail(request, slug):
    from .subscriptions import SubscribeForm

    product = get_object_or_404(Product, slug=slug)
    form = SubscribeForm() if product.is_subscription else QuantityForm()
    return render(request, "shop/product_detail.html", {"product": product, "form": form})


@require_POST
def cart_add(request, slug):
    product = get_object_or_404(Product, slug=slug)
    if product.is_subscription:
        messages.error(request, f"{product.name} is a subscription: subscribe on this page.")
        return redirect("shop:product", slug=slug)
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
    if request.GET.get("canceled"):
        messages.info(request, "Payment canceled. You can choose another way to pay.")
    open_session = order.sessions.filter(status=SessionStatus.OPEN).order_by("-created").first()
    return render(
        request,
        "shop/order_detail.html",
        {
            "order": order,
            "lines": order.shop_lines.select_related("product"),
            "pay_form": PayWithCryptoForm(),
            "open_session": open_session,
            # Something was sent: starting another session would be refused (and could make the customer pay
            # twice), so the page offers only to continue that payment.
            "payment_in_progress": open_session is not None and payment_in_progress(open_session),
        },
    )


class PayWithCryptoForm(forms.Form):
    """Choose one of the configured (network, asset) pairs, or let the customer choose on the payment page."""

    ON_THE_PAYMENT_PAGE = "any"
    option = forms.ChoiceField(label="Pay with")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pairs = [
            (f"{name}:{symbol}", f"{symbol} on {name}")
            for name, network in sorted(gateway_settings.networks.items())
            for symbol in network.assets
        ]
        any_coin = [(self.ON_THE_PAYMENT_PAGE, "Any coin (choose on the payment page)")] if len(pairs) > 1 else []
        self.fields["option"].choices = any_coin + pairs


@require_POST
@rate_limit("shop-pay-with-crypto", limit=30, window=600)  # per client and order
def pay_with_crypto(request, uuid):
    """Send the customer to the hosted payment page of the order's open session for the chosen method, starting
    one if there is none.

    Choosing the same method again (a double click, the back button, a script) reuses the open session: a new one
    would take a new deposit address each time. Another method starts a new session, which supersedes the open
    one. Two posts at the very same moment may still both start one (the later supersedes the earlier); the rate
    limit bounds that.
    """
    order = get_object_or_404(Order, uuid=uuid)
    form = PayWithCryptoForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a network and an asset to pay with.")
        return redirect("shop:order", uuid=order.uuid)
    option = form.cleaned_data["option"]
    # "any": the session offers every configured coin and the customer chooses on the hosted page.
    network, asset = ("", "") if option == form.ON_THE_PAYMENT_PAGE else option.split(":", 1)
    open_session = (
        order.sessions.filter(status=SessionStatus.OPEN, network=network, asset=asset, expires_at__gt=timezone.now())
        .order_by("-created")
        .first()
    )
    if open_session is not None:
        return redirect("payments_gateway:checkout", uuid=open_session.uuid)
    order_url = request.build_absolute_uri(reverse("shop:order", args=[order.uuid]))
    try:
        session = create_session(
            order=order,
            asset=asset,
            network=network,
            success_url=request.build_absolute_uri(reverse("shop:payment_success", args=[order.uuid]))
            + "?session={CHECKOUT_SESSION_ID}",
            cancel_url=order_url + "?canceled=1",
            metadata={"shop": "example"},
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))  # with or without a field name (message_dict)
        return redirect("shop:order", uuid=order.uuid)
    except RateUnavailable as exc:
        messages.error(request, f"No price available right now, please try again shortly ({exc}).")
        return redirect("shop:order", uuid=order.uuid)
    return redirect("payments_gateway:checkout", uuid=session.uuid)


def payment_success(request, uuid):
    """Where the payment page sends the customer. It never trusts the redirect: the session is checked here."""
    order = get_object_or_404(Order, uuid=uuid)
    session = None
    session_id = request.GET.get("session", "")
    try:
        session = order.sessions.filter(uuid=session_id).first() if session_id else None
    except ValidationError:
        session = None  # not a uuid
    paid = session is not None and session.status == SessionStatus.COMPLETE
    received = None
    if paid:
        decimals = gateway_settings.network(session.network).asset(session.asset).decimals
        received = format_units(session.amount_received, decimals)
    context = {"order": order, "session": session, "paid": paid, "received": received}
    return render(request, "shop/payment_success.html", context)
