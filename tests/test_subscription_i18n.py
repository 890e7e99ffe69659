"""A subscription speaks its customer's language: the language of the hosted page on which they chose how to pay
(or gave their details) is kept with the session, and the reminder e-mails are written in it — subject, text, HTML,
dates and amounts — with links that open the pages in it; without one, the site's LANGUAGE_CODE (when shipped)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from payments_gateway.models import CheckoutSession, Subscription
from payments_gateway.services.subscription_mail import language_of, page_token
from payments_gateway.services.subscriptions import create_subscription_session, renew_due_subscriptions

from .factories import make_payment
from .test_checkout_i18n import text_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]

PAID = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)  # the first period ends 2025-04-10 09:00 UTC


def subscribe(**fields):
    values = {"amount": "1234.50", "currency": "USD", "interval": "month", "description": "Coffee club, monthly",
              "customer_email": "club@example.com"}  # fmt: skip
    return create_subscription_session(**values | fields)


def choose_on_the_page(client, session, language):
    """The customer picks USDC on the hosted page shown in ``language`` (the chooser's own form and value)."""
    page = client.get(f"/pay/{session.uuid}/?lang={language}").content.decode()
    (value,) = re.findall(r'name="method" value="(test:USDC:\d+)"', page)
    client.post(f"/pay/{session.uuid}/method?lang={language}", {"method": value})
    session.refresh_from_db()
    return session


@pytest.fixture
def reminded(django_capture_on_commit_callbacks, mailoutbox):
    """``reminded(session)``: ``session`` (the first) is paid, the renewal opens 3 days before the period ends;
    the e-mail it sends."""

    def remind(session):
        make_payment(session, now=PAID)
        subscription = Subscription.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            renew_due_subscriptions(now=subscription.current_period_end - timedelta(days=3))
        return mailoutbox[-1]

    return remind


def test_the_language_the_customer_chose_in_is_kept_with_the_session(client):
    session = choose_on_the_page(client, subscribe(), "de")
    assert (session.asset, session.language) == ("USDC", "de")
    assert language_of(Subscription.objects.get()) == "de"


def test_the_reminder_is_written_in_that_language_with_its_dates_amounts_and_links(client, reminded):
    mail = reminded(choose_on_the_page(client, subscribe(), "de"))
    html, _ = mail.alternatives[0]
    assert mail.subject == "Verlängerung fällig: Coffee club, monthly"
    assert mail.body.startswith("Hallo,\n\nDer nächste Abrechnungszeitraum für Coffee club, monthly (1.234,50 USD)")
    assert "Hier bezahlen:" in mail.body and "Ihr Abonnement ansehen oder kündigen:" in mail.body
    assert '<html lang="de">' in html and "Verlängerung bezahlen</a>" in html
    assert "1.234,50 USD" in mail.body and "10. April 2025 09:00" in mail.body
    renewal = CheckoutSession.objects.get(type="renewSubscription")
    assert f"https://shop.example/pay/{renewal.uuid}/?lang=de" in mail.body
    assert re.search(r"https://shop\.example/subscriptions/[^/\s]+/\?lang=de", mail.body)


def test_the_customer_form_keeps_its_page_s_language(client, settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"SUBSCRIPTION_REMINDERS": False}
    session = subscribe(customer_email="", network="test", asset="USDC", now=timezone.now())
    client.post(f"/pay/{session.uuid}/customer?lang=es", {"email": "ana@example.com", "name": "Ana"})
    session.refresh_from_db()
    assert (session.customer.email, session.language) == ("ana@example.com", "es")


def test_the_past_due_reminder_in_french(client, reminded, django_capture_on_commit_callbacks, mailoutbox):
    reminded(choose_on_the_page(client, subscribe(description=""), "fr"))
    subscription = Subscription.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions(now=subscription.current_period_end)
    mail = mailoutbox[-1]
    assert mail.subject == "Votre paiement pour votre abonnement est en retard"
    assert "Le paiement de 1\xa0234,50 USD pour votre abonnement était dû le 10 avril 2025 09:00" in mail.body
    assert "Payer maintenant</a>" in mail.alternatives[0][0]


@pytest.mark.parametrize(
    ("language", "texts", "ending"),
    [
        ("de", ["Aktiv.", "Nächste Zahlung fällig am:", "1.234,50 USD alle 3 Monate", "Abonnement kündigen…"],
         "Ihr Abonnement endet mit dem bereits bezahlten Zeitraum."),
        ("es", ["Activa.", "Próximo pago el:", "1 234,50 USD cada 3 meses", "Cancelar la suscripción…"],
         "Su suscripción terminará con el periodo ya pagado."),
        ("fr", ["Actif.", "Prochain paiement le :", "1 234,50 USD tous les 3 mois", "Résilier l’abonnement…"],
         "Votre abonnement prendra fin avec la période déjà payée."),
    ],
)  # fmt: skip
def test_the_customer_s_page_and_its_confirmation_are_translated(client, language, texts, ending):
    make_payment(subscribe(interval_count=3, network="test", asset="USDC", now=PAID), now=PAID)
    url = f"/subscriptions/{page_token(Subscription.objects.get())}/"
    page = text_of(client.get(f"{url}?lang={language}"))
    assert all(text in page for text in texts), page
    confirm = text_of(client.get(f"{url}cancel?lang={language}"))
    english = ["Cancel your subscription?", "Nothing more will be charged.", "Yes, cancel my subscription",
               "No, keep it", "Next payment due:", "every 3 months"]  # fmt: skip
    assert [text for text in english if text in page + confirm] == []
    done = text_of(client.post(f"{url}cancel?lang={language}", follow=True))
    assert ending in done and texts[-1] not in done  # said in the page's language; nothing left to cancel


@pytest.mark.parametrize(("language_code", "written_in"), [("fr-ca", "fr"), ("ja", "en")])
def test_without_a_known_language_the_site_s_language_code_when_shipped(reminded, settings, language_code,
                                                                       written_in):  # fmt: skip
    settings.LANGUAGE_CODE = language_code
    mail = reminded(subscribe(network="test", asset="USDC", now=PAID - timedelta(hours=1)))
    assert CheckoutSession.objects.exclude(language="").count() == 0
    assert f'<html lang="{written_in}">' in mail.alternatives[0][0]
