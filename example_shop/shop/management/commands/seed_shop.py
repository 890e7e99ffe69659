from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand

from example_shop.shop.models import Product
from payments_gateway.models import WebhookEndpoint

# The shop's receiver (example_shop/shop/webhooks.py) fulfils on payment.completed; the rest are shown in its log.
SHOP_EVENTS = [
    "payment.created", "payment.pending", "payment.completed", "payment.failed", "payment.expired",
    "subscription.activated", "subscription.renewed", "subscription.past_due", "subscription.canceled",
]  # fmt: skip

PRODUCTS = [
    ("hardware-wallet", "Hardware wallet", "Keeps your keys offline.", "79.00"),
    ("node-in-a-box", "Node in a box", "A small computer that runs a full node.", "349.00"),
    ("sticker-pack", "Sticker pack", "Ten stickers for your laptop.", "4.50"),
    ("coffee-mug", "Coffee mug", "Holds coffee while blocks confirm.", "12.00"),
    ("steel-backup", "Steel seed backup", "Fire-proof storage for a seed phrase.", "59.90"),
]


# Subscriptions (slug, name, description, price, interval): subscribed to on the product page, never in the cart.
SUBSCRIPTION_PRODUCTS = [
    ("coffee-club", "Coffee club, monthly", "A bag of freshly roasted beans every month.", "15.00", "month"),
]


class Command(BaseCommand):
    help = "Create the example products and the shop's webhook endpoint (idempotent)."

    def handle(self, *args, **options):
        for slug, name, description, price in PRODUCTS:
            Product.objects.update_or_create(
                slug=slug, defaults={"name": name, "description": description, "price": Decimal(price)}
            )
        for slug, name, description, price, interval in SUBSCRIPTION_PRODUCTS:
            Product.objects.update_or_create(
                slug=slug,
                defaults={"name": name, "description": description, "price": Decimal(price), "interval": interval},
            )
        self.stdout.write(f"{len(PRODUCTS) + len(SUBSCRIPTION_PRODUCTS)} products ready.")
        endpoint, _ = WebhookEndpoint.objects.update_or_create(
            url=settings.SHOP_WEBHOOK_URL,
            defaults={
                "description": "Example shop receiver",
                "secret": settings.SHOP_WEBHOOK_SECRET,
                "enabled_events": SHOP_EVENTS,
                "active": True,
                "disabled_reason": "",
                "disabled_at": None,
                "failing_since": None,
            },
        )
        self.stdout.write(f"Webhook endpoint ready: {endpoint.url}")
