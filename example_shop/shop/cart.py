"""A cart kept in the Django session: {product id: quantity}."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 99


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def total(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    def __init__(self, session) -> None:
        self.session = session
        self.items: dict[str, int] = dict(session.get(SESSION_KEY, {}))

    def add(self, product: Product, quantity: int) -> None:
        self.items[str(product.pk)] = min(self.items.get(str(product.pk), 0) + quantity, MAX_QUANTITY)
        self._save()

    def set(self, product: Product, quantity: int) -> None:
        if quantity <= 0:
            self.items.pop(str(product.pk), None)
        else:
            self.items[str(product.pk)] = min(quantity, MAX_QUANTITY)
        self._save()

    def clear(self) -> None:
        self.items = {}
        self._save()

    def lines(self) -> list[CartLine]:
        products = Product.objects.in_bulk([int(pk) for pk in self.items])
        return [CartLine(products[int(pk)], qty) for pk, qty in self.items.items() if int(pk) in products]

    @property
    def count(self) -> int:
        return sum(self.items.values())

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines()), Decimal(0))

    @property
    def currency(self) -> str:
        lines = self.lines()
        return lines[0].product.currency if lines else "USD"

    def _save(self) -> None:
        self.session[SESSION_KEY] = self.items
        self.session.modified = True
