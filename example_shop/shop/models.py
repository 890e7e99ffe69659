"""The shop's own catalogue. Orders live in payments_gateway (``Order``); the shop links to them."""

from django.db import models

from payments_gateway.fields import ExactDecimalField


class Product(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = ExactDecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    interval = models.CharField(
        max_length=8,
        blank=True,
        choices=[("", "one-off")] + [(v, f"every {v}") for v in ("day", "week", "month", "year")],
        help_text="Set: a subscription billed every interval (subscribed to on its page, never put in the cart).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_subscription(self) -> bool:
        return bool(self.interval)


class ShopOrderLine(models.Model):
    """A line of a payments_gateway ``Order`` placed through this shop."""

    order = models.ForeignKey("payments_gateway.Order", on_delete=models.CASCADE, related_name="shop_lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()
    unit_price = ExactDecimalField(max_digits=12, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"

    @property
    def total(self):
        return self.unit_price * self.quantity


class ProcessedWebhook(models.Model):
    """A webhook from the payment gateway, recorded once by its ``webhook-id``: a redelivery is recognised and
    not processed again."""

    webhook_id = models.CharField(max_length=100, unique=True)
    event_type = models.CharField(max_length=40)
    order = models.ForeignKey(
        "payments_gateway.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="shop_webhooks"
    )
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-processed_at"]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.event_type}"
