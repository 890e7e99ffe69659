from decimal import Decimal

from django.core.management.base import BaseCommand

from example_shop.shop.models import Product

PRODUCTS = [
    ("hardware-wallet", "Hardware wallet", "Keeps your keys offline.", "79.00"),
    ("node-in-a-box", "Node in a box", "A small computer that runs a full node.", "349.00"),
    ("sticker-pack", "Sticker pack", "Ten stickers for your laptop.", "4.50"),
    ("coffee-mug", "Coffee mug", "Holds coffee while blocks confirm.", "12.00"),
    ("steel-backup", "Steel seed backup", "Fire-proof storage for a seed phrase.", "59.90"),
]


class Command(BaseCommand):
    help = "Create the example products (idempotent)."

    def handle(self, *args, **options):
        for slug, name, description, price in PRODUCTS:
            Product.objects.update_or_create(
                slug=slug, defaults={"name": name, "description": description, "price": Decimal(price)}
            )
        self.stdout.write(f"{len(PRODUCTS)} products ready.")
