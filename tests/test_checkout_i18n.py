"""The hosted pages speak the customer's language (Accept-Language, a switcher, without LocaleMiddleware), with
amounts and dates in that language's format but never another value; every string is in the shipped catalogues;
the shop's branding is on the page and its logo allowed by the page's Content-Security-Policy."""

import gettext
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from eth_utils import to_checksum_address

from payments_gateway.i18n import LANGUAGES, localize_amount
from payments_gateway.models import CheckoutSession
from payments_gateway.services.methods import choose_payment_method
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.sessions import create_session

from .factories import TEST_NETWORK, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]
PACKAGE = Path(__file__).resolve().parent.parent / "payments_gateway"
LOCALES = [code for code, _ in LANGUAGES if code != "en"]


@pytest.fixture
def explorer(use_networks):
    use_networks(test=TEST_NETWORK | {"explorer_url": "https://scan.example"})


def usdc_session(amount="1234.50"):
    session = create_session(amount=amount, currency="USD", cancel_url="https://shop.example/cart")
    return choose_payment_method(session, "test", "USDC")


def get(client, session, path="", **headers):
    return client.get(f"/pay/{session.uuid}/{path}", **headers)


def text_of(response):
    """The page's visible text (tags, scripts and attributes left out)."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_accept_language_picks_the_page_s_language_without_locale_middleware(client, settings):
    settings.LANGUAGES = [("en", "English")]  # the shop itself speaks only English
    assert "django.middleware.locale.LocaleMiddleware" not in settings.MIDDLEWARE
    session = usdc_session()
    response = get(client, session, HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9,en;q=0.5")
    assert response["Content-Language"] == "es" and "Accept-Language" in response["Vary"]
    page = response.content.decode()
    assert '<html lang="es">' in page and "Esperando su pago." in text_of(response)
    state = get(client, session, "status", HTTP_ACCEPT_LANGUAGE="es").json()
    assert state["message"] == "Esperando su pago."
    assert get(client, session, HTTP_ACCEPT_LANGUAGE="ja,zh;q=0.8")["Content-Language"] == "en"


def test_the_switcher_changes_the_language_and_the_cookie_keeps_it(client):
    session = usdc_session()
    page = get(client, session, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    links = re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang="\w+"( aria-current="page")?>([^<]+)</a>', page)
    assert [(lang, name, bool(current)) for _, lang, current, name in links] == [
        ("en", "English", False), ("de", "Deutsch", True), ("es", "Español", False), ("fr", "Français", False),
    ]  # fmt: skip
    french = client.get({lang: url for url, lang, _, _ in links}["fr"].replace("&amp;", "&"))
    assert french["Content-Language"] == "fr" and "En attente de votre paiement." in text_of(french)
    assert french.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == "fr"
    # Later visits (and the page's forms and live status) stay in French, whatever the browser says.
    assert get(client, session, HTTP_ACCEPT_LANGUAGE="de")["Content-Language"] == "fr"
    assert f'data-status-url="/pay/{session.uuid}/status?lang=fr"' in french.content.decode()


def test_an_unknown_language_is_a_message_on_the_page_and_changes_nothing(client):
    session = usdc_session()
    response = get(client, session, "?lang=xx-YY", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200 and response["Content-Language"] == "de"
    assert "Die Sprache „xx-YY“ ist nicht verfügbar; diese Seite wird auf Deutsch angezeigt." in text_of(response)
    assert django_settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert "ist nicht verfügbar" not in text_of(get(client, session, HTTP_ACCEPT_LANGUAGE="de"))


def test_amounts_and_dates_follow_the_language_but_copy_buttons_and_json_keep_the_exact_value(client):
    session = usdc_session("1234.56")
    german = get(client, session, HTTP_ACCEPT_LANGUAGE="de")
    page = german.content.decode()
    assert '<span id="amount-due">1.234,56</span> USDC bezahlen' in page
    assert '<code id="amount-to-pay">1.234,56</code>' in page
    assert 'data-copy-value="1234.56"' in page and f'data-copy-value="{session.address}"' in page
    month = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember"][session.expires_at.month - 1]  # fmt: skip
    assert f"{session.expires_at.day}. {month} {session.expires_at.year}" in text_of(german)
    state = get(client, session, "status?lang=fr").json()
    assert (state["amount_to_pay"], state["amount_to_pay_display"]) == ("1234560000", "1234.56")
    assert state["amount_to_pay_local"] == "1\xa0234,56"
    assert session.amount_due == 1_234_560_000  # the value itself never changes


@pytest.mark.parametrize(
    "value", ["0.000000000000000001", "115792089237316195423570985008687907853269984665640564039457"]
)
def test_localized_amounts_keep_every_digit(value):
    from django.utils import translation

    with translation.override("de"):
        shown = localize_amount(value)
    assert shown.replace(".", "").replace(",", ".") == value


def test_every_state_of_the_page_is_translated(client, explorer):
    paid = usdc_session("25.00")
    make_transfer(paid, 25_000_000, status="confirmed")
    refresh_session(paid.pk)
    partial = usdc_session("25.00")
    make_transfer(partial, 5_000_000, status="confirmed")
    refresh_session(partial.pk)
    expired = usdc_session()
    CheckoutSession.objects.filter(pk=expired.pk).update(status="expired")
    choosing = create_session(amount="10.00", currency="USD")
    english = set(_catalogue_msgids())
    for language in LOCALES:
        for session in (paid, partial, expired, choosing):
            visible = text_of(get(client, session, f"?lang={language}"))
            # No sentence of the catalogue is left in English (single words such as "Name" may be the same).
            left = {m for m in english if " " in m and "%" not in m and "<" not in m and m in visible}
            assert left == set(), (language, session.status, left)


def test_the_catalogues_are_complete_compiled_and_match_the_code(tmp_path):
    if not shutil.which("xgettext"):
        pytest.fail("gettext is not installed: run `make setup` (installs Debian's gettext).")
    copy = tmp_path / "payments_gateway"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    # Django's own command, run on a copy of the package, as CONTRIBUTING.md tells a developer to run it.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    command = [sys.executable, "-m", "django", "makemessages", "--no-wrap", "--no-location"]
    made = subprocess.run([*command, *[f"-l{code}" for code in LOCALES]], cwd=copy, env=env, capture_output=True)
    assert made.returncode == 0, made.stderr.decode()
    for code in LOCALES:
        po = PACKAGE / "locale" / code / "LC_MESSAGES" / "django.po"
        regenerated = _msgids(copy / "locale" / code / "LC_MESSAGES" / "django.po")
        assert regenerated == _msgids(po), f"{code}: run makemessages (see CONTRIBUTING.md)"
        assert "#, fuzzy" not in po.read_text()
        compiled = tmp_path / f"{code}.mo"
        subprocess.run(["msgfmt", "--check-format", "-o", str(compiled), str(po)], check=True)
        with open(compiled, "rb") as fresh, open(po.with_suffix(".mo"), "rb") as shipped:
            fresh_catalog = gettext.GNUTranslations(fresh)._catalog
            assert fresh_catalog == gettext.GNUTranslations(shipped)._catalog, f"{code}: run compilemessages"
        untranslated = [k for k, v in fresh_catalog.items() if k and not v]
        msgids = {key if isinstance(key, str) else key[0] for key in fresh_catalog}  # plurals: (msgid, form) keys
        assert untranslated == [] and len(msgids) == len(regenerated) + 1  # +1: the header


def test_branding_name_logo_and_accent_colour_with_the_logo_allowed_by_the_policy(client, settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"CHECKOUT_BRANDING": {
        "name": "Mug Shop", "logo_url": "https://cdn.mugs.example/logo.svg", "accent_color": "#FFD400"}}  # fmt: skip
    session = usdc_session()
    response = get(client, session)
    page = response.content.decode()
    assert '<img class="logo" src="https://cdn.mugs.example/logo.svg" height="32" alt="">' in page
    assert '<span class="shop-name">Mug Shop</span>' in page and "<title>Pay 1,234.5 USDC</title>" in page
    assert "img-src 'self' data: https://cdn.mugs.example;" in response["Content-Security-Policy"]
    assert '<link rel="stylesheet" href="/pay/theme.css">' in page
    theme = client.get("/pay/theme.css")
    assert theme["Content-Type"].startswith("text/css") and "Content-Security-Policy" in theme
    assert theme.content.decode() == ":root { --accent: #ffd400; --on-accent: #000000; }\n"


def test_without_branding_the_page_is_neutral(client):
    page = get(client, usdc_session()).content.decode()
    assert "theme.css" not in page and 'class="logo"' not in page and "shop-name" not in page


def test_the_wallet_box_has_what_a_wallet_needs_in_the_page_s_language(client, use_networks):
    use_networks(test=TEST_NETWORK | {"display_name": "Testnet", "explorer_url": "https://scan.example",
                                      "wallet_rpc_url": "https://rpc.example"})  # fmt: skip
    session = usdc_session()
    page = get(client, session, "?lang=fr").content.decode()
    box = dict(re.findall(r' data-([a-z-]+)="([^"]*)"', re.search(r'<div id="wallet"[^>]*>', page).group(0)))
    assert {k: v for k, v in box.items() if k != "messages"} == {
        "chain-id": "31337", "chain-name": "Testnet", "rpc-url": "https://rpc.example",
        "explorer-url": "https://scan.example", "native-symbol": "ETH", "native-decimals": "18", "asset": "USDC",
        "decimals": "6", "token": to_checksum_address(TEST_NETWORK["tokens"]["USDC"]["address"]),
        "to": session.address, "decimal-separator": ",",
    }  # fmt: skip
    messages = json.loads(html_lib.unescape(box["messages"]))
    assert messages["rejected_send"].startswith("Vous avez refusé le paiement")
    assert '<script src="/static/payments_gateway/wallet.js" defer></script>' in page


def test_transactions_are_linked_to_the_explorer_on_the_page_and_in_the_status(client, explorer):
    session = usdc_session("25.00")
    transfer = make_transfer(session, 25_000_000, status="confirmed")
    refresh_session(session.pk)
    url = f"https://scan.example/tx/{transfer.tx_hash}"
    state = get(client, session, "status").json()
    assert state["tx_hashes"] == [transfer.tx_hash] and state["transactions"] == [
        {"hash": transfer.tx_hash, "url": url}
    ]
    page = get(client, session).content.decode()
    assert f'<a class="hash" href="{url}" target="_blank" rel="noopener noreferrer">{transfer.tx_hash}</a>' in page


def test_the_paid_page_returns_to_the_shop_by_itself_also_without_javascript(client):
    session = create_session(amount="25.00", currency="USD", network="test", asset="USDC",
                             success_url="https://shop.example/thanks")  # fmt: skip
    make_transfer(session, 25_000_000, status="confirmed")
    refresh_session(session.pk)
    page = get(client, session).content.decode()
    assert f'<noscript><meta http-equiv="refresh" content="5;url=/pay/{session.uuid}/continue?lang=en">' in page
    assert 'id="redirect-note" class="muted" data-seconds="5"' in page
    assert f'<a id="continue" class="button" href="/pay/{session.uuid}/continue?lang=en"' in page
    assert get(client, session, "continue?lang=en")["Location"] == "https://shop.example/thanks"


def test_a_canceled_page_says_so_and_links_back_to_the_shop(client):
    session = usdc_session()
    client.post(f"/pay/{session.uuid}/cancel")
    response = get(client, session, "?lang=es")
    assert "Este pago se ha cancelado." in text_of(response)
    assert '<a id="back-to-shop" class="button" href="https://shop.example/cart">Volver a la tienda</a>' in (
        response.content.decode()
    )


def _msgids(po: Path) -> list[str]:
    return sorted(set(re.findall(r'^msgid "(.+)"$', po.read_text(), flags=re.M)))


def _catalogue_msgids() -> list[str]:
    return [m.replace('\\"', '"') for m in _msgids(PACKAGE / "locale" / "de" / "LC_MESSAGES" / "django.po")]
