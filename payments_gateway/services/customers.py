"""Customers: created by the merchant (API) or by the customer on the hosted page; each change is an event."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..events import emit
from ..jsonsafe import unstorable_text
from ..models import CheckoutSession, Customer, Order
from .live import session_changed
from .payloads import customer_payload

MAX_EMAIL_LENGTH = 254  # Customer.email (EmailField's default max_length, RFC 5321)


def create_customer(**fields: Any) -> Customer:
    """Create a customer from validated ``fields`` (``customer.created``)."""
    with transaction.atomic():
        customer = Customer.objects.create(**fields)
        emit("customer.created", customer_payload(customer))
    return customer


def update_customer(customer: Customer, **fields: Any) -> Customer:
    """Change validated ``fields`` of ``customer`` (``customer.updated``)."""
    with transaction.atomic():
        for name, value in fields.items():
            setattr(customer, name, value)
        customer.save()
        emit("customer.updated", customer_payload(customer))
    return customer


def attach_customer(session: CheckoutSession, *, email: str, name: str = "", language: str = "") -> Customer:
    """The hosted page's customer form: create a new Customer (``customer.created``) and attach it to the session
    and, when the order has none, to its order. ``language``: the form's page's, kept as the session's (e-mails to
    the customer use it).

    The form is public (anyone with the session link can post it), so it never looks up or changes an existing
    Customer by e-mail: that would let a stranger attach a victim's customer record (and rename it). Only the
    merchant links an existing customer (the API's ``customer`` uuid).
    """
    email = (email or "").strip()
    name = (name or "").strip()[:200]
    for field, value in (("email", email), ("name", name)):
        found = unstorable_text(value, field)
        if found:
            raise ValidationError({field: [f"{found[0]} {found[1]}."]})
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError(
            {"email": [_("An e-mail address has at most %(count)s characters.") % {"count": MAX_EMAIL_LENGTH}]}
        )
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": [_("Enter a valid e-mail address.")]}) from None
    with transaction.atomic():
        customer = Customer.objects.create(email=email, name=name)
        emit("customer.created", customer_payload(customer), session=session)
        spoken = {"language": language} if language else {}
        CheckoutSession.objects.filter(pk=session.pk).update(customer=customer, updated=timezone.now(), **spoken)
        Order.objects.filter(pk=session.order_id, customer__isnull=True).update(customer=customer)
        session_changed(session.uuid)
    session.customer = customer
    return customer
