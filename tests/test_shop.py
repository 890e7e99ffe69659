"""The example shop: browse, fill a cart, place an order that becomes a payments_gateway ``Order``."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from example_shop.shop.management.commands.seed_shop import PRODUCTS, SUBSCRIPTION_PRODUCTS
from example_shop.shop.models import Product, ShopOrderLine
from payments_gateway.models import Order

pytestmark = pytest.mark.django_db


def seed():
    out = io.StringIO()
    call_command("seed_shop", stdout=out)
    return out.getvalue()


@pytest.fixture
def products():
    seed()
    return {p.slug: p for p in Product.objects.all()}


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def add(client, slug, quantity):
    return client.post(reverse("shop:cart_add", args=[slug]), {"quantity": quantity}, follow=True)


def cart_items(client):
    return client.session.get("cart", {})


def test_product_list_and_product_page(client, products):
    listing = client.get(reverse("shop:products")).content.decode()
    for _, name, _, price in PRODUCTS:
        assert name in listing
        assert f"{price} USD" in listing
    page = client.get(reverse("shop:product", args=["coffee-mug"]))
    assert page.status_code == 200
    assert "Holds coffee while blocks confirm." in page.content.decode()
    assert 'action="/products/coffee-mug/add/"' in page.content.decode()
    assert client.get(reverse("shop:product", args=["no-such-thing"])).status_code == 404


def test_add_to_cart(client, products):
    response = add(client, "coffee-mug", 2)
    assert response.redirect_chain[-1][0] == reverse("shop:cart")
    assert "Added Coffee mug to your cart." in messages_of(response)
    add(client, "coffee-mug", 1)
    add(client, "sticker-pack", 3)
    page = client.get(reverse("shop:cart")).content.decode()
    assert "Cart (6)" in page
    assert "36.00 USD" in page  # 3 × 12.00
    assert "49.50 USD" in page  # 36.00 + 3 × 4.50


@pytest.mark.parametrize("quantity", ["0", "-1", "100", "1.5", "abc", ""])
def test_bad_quantity_is_refused_with_a_clear_message_and_nothing_added(client, products, quantity):
    response = add(client, "coffee-mug", quantity)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("shop:product", args=["coffee-mug"])
    assert messages_of(response) == ["Choose a quantity between 1 and 99."]
    assert cart_items(client) == {}


def test_cart_update_changes_and_removes_lines(client, products):
    add(client, "coffee-mug", 2)
    add(client, "sticker-pack", 1)
    mug = products["coffee-mug"]
    client.post(reverse("shop:cart"), {"product": mug.pk, "quantity": 5})
    assert cart_items(client)[str(mug.pk)] == 5
    client.post(reverse("shop:cart"), {"product": mug.pk, "quantity": 0})
    assert str(mug.pk) not in cart_items(client)
    assert cart_items(client) == {str(products["sticker-pack"].pk): 1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"product": "MUG", "quantity": "-3"}, "Choose a quantity between 0 and 99."),
        ({"product": "MUG", "quantity": "x"}, "Choose a quantity between 0 and 99."),
        ({"product": "abc", "quantity": "1"}, "That product is not in your cart."),
        ({"quantity": "1"}, "That product is not in your cart."),
    ],
)
def test_bad_cart_update_says_why_and_changes_nothing(client, products, data, message):
    add(client, "coffee-mug", 2)
    before = dict(cart_items(client))
    data = {k: products["coffee-mug"].pk if v == "MUG" else v for k, v in data.items()}
    response = client.post(reverse("shop:cart"), data, follow=True)
    assert response.status_code == 200
    assert messages_of(response) == [message]
    assert cart_items(client) == before


def test_cart_update_of_an_unknown_product_is_a_404(client, products):
    assert client.post(reverse("shop:cart"), {"product": 999999, "quantity": 1}).status_code == 404


def test_place_order_creates_a_gateway_order_awaiting_payment(client, products):
    add(client, "hardware-wallet", 1)
    add(client, "steel-backup", 2)
    response = client.post(reverse("shop:place_order"), follow=True)
    order = Order.objects.get()
    assert response.redirect_chain[-1][0] == reverse("shop:order", args=[order.uuid])
    assert order.amount == Decimal("198.80")  # 79.00 + 2 × 59.90, exact
    assert type(order.amount) is Decimal
    assert order.currency == "USD"
    assert order.status == "pending"
    assert order.reference == f"SHOP-{order.pk:06d}"
    assert order.description == "1 × Hardware wallet, 2 × Steel seed backup"
    lines = sorted((line.product.slug, line.quantity, line.unit_price) for line in order.shop_lines.all())
    assert lines == [("hardware-wallet", 1, Decimal("79.00")), ("steel-backup", 2, Decimal("59.90"))]
    page = response.content.decode()
    assert f"Order {order.reference}" in page
    assert "This order is awaiting payment." in page
    assert "198.80 USD" in page
    assert cart_items(client) == {}  # the cart is emptied once the order exists


def test_placing_an_order_with_an_empty_cart_says_so(client, products):
    response = client.post(reverse("shop:place_order"), follow=True)
    assert messages_of(response) == ["Your cart is empty."]
    assert not Order.objects.exists()
    assert not ShopOrderLine.objects.exists()
    # A second click on "Place order" after the first one succeeded is the same case: no second order.
    add(client, "coffee-mug", 1)
    client.post(reverse("shop:place_order"))
    client.post(reverse("shop:place_order"))
    assert Order.objects.count() == 1


def test_place_order_needs_post(client, products):
    add(client, "coffee-mug", 1)
    assert client.get(reverse("shop:place_order")).status_code == 405
    assert not Order.objects.exists()


def test_order_page_of_an_unknown_order_is_a_404(client):
    assert client.get(reverse("shop:order", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404


def test_seed_shop_is_idempotent(products):
    Product.objects.filter(slug="coffee-mug").update(price=Decimal("1.00"))
    first, second = seed(), seed()
    assert "6 products ready." in first
    assert second == first
    assert Product.objects.count() == len(PRODUCTS) + len(SUBSCRIPTION_PRODUCTS) == 6
    assert {p.slug: p.price for p in Product.objects.filter(interval="")} == {
        slug: Decimal(price) for slug, _, _, price in PRODUCTS
    }
    assert Product.objects.get(slug="coffee-club").interval == "month"
