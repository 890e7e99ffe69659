"""What the customer of a subscription receives: reminder e-mails, and the signed link to their own page.

E-mails go through Django's e-mail framework (``EMAIL_BACKEND``, ``DEFAULT_FROM_EMAIL``), as text with an HTML
alternative rendered from translatable templates (``payments_gateway/email/subscription_<kind>.txt|html``), to the
subscription's customer's address. They are sent after the transaction that caused them commits, so no e-mail
announces a renewal that was rolled back; a failure to send is logged and changes nothing.

Each e-mail is written in the customer's language (:func:`language_of`): the language of the hosted page on which
they chose how to pay, or gave their details, for one of the subscription's sessions (the newest that says), else
``settings.LANGUAGE_CODE`` when it is a shipped language, else English. Subject, text, HTML, dates and amounts are
all in it, and its links open the pages in it.

Every e-mail carries the customer's link ``/subscriptions/<token>/``: the token is the subscription's uuid signed
with Django's ``signing`` (``SECRET_KEY``), so nobody can make one for another subscription. Links are absolute,
made from ``PAYMENTS_GATEWAY["PUBLIC_URL"]``.
"""

from __future__ import annotations

import functools
import logging

from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext

from ..conf import gateway_settings, key_of
from ..i18n import default_language, localize_amount, supported, with_language
from ..models import CheckoutSession, Subscription
from ..money import format_fiat

logger = logging.getLogger(__name__)

SALT = "payments_gateway.subscription-page"
#: kind → subject; each kind has its two templates.
SUBJECTS = {
    "renewal_due": lambda: gettext("Your renewal of %(description)s is due"),
    "past_due": lambda: gettext("Your payment for %(description)s is past due"),
}


def page_token(subscription: Subscription) -> str:
    """The signed token of the customer's page of ``subscription``."""
    return signing.dumps(str(subscription.uuid), salt=SALT)


def subscription_for_token(token: str) -> Subscription | None:
    """The subscription a token was made for, or None for a token that was not signed by this site."""
    try:
        uuid = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    return Subscription.objects.select_related("customer").filter(uuid=uuid).first()


def public_url(path: str) -> str:
    """``path`` (from ``reverse``) as an absolute URL under ``PUBLIC_URL``."""
    base = gateway_settings.PUBLIC_URL
    if base is None:
        raise ImproperlyConfigured(
            f"{key_of('PUBLIC_URL')} is not set: subscription e-mails need absolute links. Set it to the address "
            "customers reach your site at, e.g. 'https://shop.example', or set SUBSCRIPTION_REMINDERS to False."
        )
    return base + path


def page_url(subscription: Subscription) -> str:
    return public_url(reverse("payments_gateway:subscription", args=[page_token(subscription)]))


def remind_after_commit(kind: str, subscription: Subscription, session: CheckoutSession | None) -> None:
    """E-mail reminder ``kind`` once the current transaction commits (when ``SUBSCRIPTION_REMINDERS`` is on)."""
    if kind not in SUBJECTS:
        raise ValueError(f"unknown reminder {kind!r}; known: {', '.join(SUBJECTS)}")
    if gateway_settings.SUBSCRIPTION_REMINDERS:
        send = functools.partial(send_reminder, kind, subscription.pk, session.pk if session else None)
        transaction.on_commit(send, robust=True)


def send_reminder(kind: str, subscription_id: int, session_id: int | None) -> bool:
    """Send reminder ``kind`` of a subscription to its customer, in their language, with the session to pay;
    False when there is nobody to send it to (the customer's e-mail address was removed since)."""
    subscription = Subscription.objects.select_related("customer").get(pk=subscription_id)
    email = subscription.customer.email if subscription.customer else ""
    if not email:
        logger.warning("subscription %s: no customer e-mail address, %s reminder not sent", subscription.uuid, kind)
        return False
    session = CheckoutSession.objects.filter(pk=session_id).first() if session_id else None
    with translation.override(language_of(subscription)):
        message = _reminder(kind, subscription, session, email)
    message.send()
    return True


def language_of(subscription: Subscription) -> str:
    """The language to write to ``subscription``'s customer in (see the module docstring)."""
    spoken = (
        CheckoutSession.objects.filter(subscription_period__subscription=subscription)
        .exclude(language="")
        .order_by("-created", "-pk")
        .values_list("language", flat=True)
        .first()
    )
    return supported(spoken) or default_language()


def _reminder(kind: str, subscription: Subscription, session: CheckoutSession | None, email: str):
    """The e-mail of reminder ``kind``, in the active language."""
    due = timezone.localtime(subscription.current_period_end) if subscription.current_period_end else None
    context = {
        "subscription": subscription,
        "amount": localize_amount(format_fiat(subscription.amount, subscription.currency)),
        "currency": subscription.currency,
        "due": f"{date_format(due, 'DATETIME_FORMAT')} ({due.tzname()})" if due else "",
        "session": session,
        "pay_url": with_language(public_url(reverse("payments_gateway:checkout", args=[session.uuid])))
        if session else "",
        "page_url": with_language(page_url(subscription)),
    }  # fmt: skip
    subject = SUBJECTS[kind]() % {"description": subscription.description or gettext("your subscription")}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"payments_gateway/email/subscription_{kind}.txt", context),
        to=[email],
    )
    message.attach_alternative(render_to_string(f"payments_gateway/email/subscription_{kind}.html", context),
                               "text/html")  # fmt: skip
    return message
