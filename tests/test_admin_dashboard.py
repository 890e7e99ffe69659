"""The merchant dashboard page: exact totals per asset, a per-day SVG bar chart, session counts by status and
scanner lag per configured network; staff only."""

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from payments_gateway.models import ChainCursor
from payments_gateway.services.dashboard import BAR_GAP, BAR_WIDTH, CHART_HEIGHT, dashboard_data

from .factories import TEST_NETWORK, make_session, make_transfer

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
ETH = 10**18
HUGE = 2**70 + 1  # wei: above 2**64, so any float or 64-bit sum on the way would lose it
# "anvil" with ETH and USDC, scanned in ``world``; "sepolia" with ETH only, never scanned.
NETWORKS = {"anvil": TEST_NETWORK, "sepolia": {**TEST_NETWORK, "chain_id": 11155111, "tokens": {}}}


@pytest.fixture(autouse=True)
def networks(use_networks):
    use_networks(**NETWORKS)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


def url():
    return reverse("admin:payments_gateway_dashboard")


def session_in(status, payment_status, asset="ETH", network="anvil"):
    """A session in the given state, of 1 base unit of ``asset``, quoted at ``NOW``."""
    return make_session(network=network, asset=asset, status=status, payment_status=payment_status, amount_due=1,
                        quoted_at=NOW, expires_at=NOW + timedelta(hours=1))  # fmt: skip


def pay(session, amount, at, status="confirmed", asset=None, linked=True):
    """A transfer to the session's address at ``at``; ``linked=False``: recorded, but credited to no session."""
    asset = asset or session.asset
    return make_transfer(
        session if linked else None, amount, status=status, network=session.network, asset=asset,
        kind="native" if asset == "ETH" else "erc20", to_address=session.address,
        deposit_address=session.deposit_address, detected_at=at, confirmed_at=at if status != "detected" else None,
        reverted_at=at if status == "reverted" else None,
    )  # fmt: skip


@pytest.fixture
def world():
    """Payments over several days and assets, sessions in several states, one scanned and one idle network."""
    paid = session_in("complete", "paid")
    pay(paid, HUGE, NOW - timedelta(hours=1))  # today
    pay(paid, 5 * ETH, NOW - timedelta(days=3))  # 2026-03-12
    pay(paid, 1 * ETH, NOW - timedelta(days=40))  # outside the chart, still in the total
    pay(paid, 7 * ETH, NOW - timedelta(hours=2), status="reverted")  # reorged away: never counts
    pay(paid, 9 * ETH, NOW - timedelta(hours=2), status="detected")  # not confirmed yet
    pay(paid, 11 * ETH, NOW - timedelta(hours=2), linked=False)  # not credited to any session
    usdc = session_in("complete", "paid", asset="USDC")
    pay(usdc, 24_500_000, NOW - timedelta(days=29))  # 2026-02-14: the chart's first day
    pay(usdc, 500_000, NOW - timedelta(days=30))  # 2026-02-13: the day before, only in the total
    session_in("open", "unpaid")
    session_in("open", "unpaid")
    session_in("expired", "partially_paid")
    ChainCursor.objects.create(
        network="anvil",
        block_number=100,
        head_block=112,
        last_scan_at=NOW - timedelta(minutes=2),
        last_error="RPC timeout on http://127.0.0.1:1",
    )


def bars(html, asset):
    svg = re.search(rf'<svg class="pg-chart"[^>]*data-asset="{asset}".*?</svg>', html, re.S)
    assert svg, f"no chart for {asset}"
    ElementTree.fromstring(svg.group(0))  # well-formed SVG markup
    return {day: int(units) for day, units in re.findall(r'data-day="([\d-]+)" data-units="(\d+)"', svg.group(0))}


def test_staff_sees_exact_totals_chart_counts_and_lag(admin_client, world, frozen_now):
    response = admin_client.get(url())
    assert response.status_code == 200
    html = response.content.decode()

    # Totals: the 2**70 + 1 wei survive exactly; reverted, unconfirmed and unlinked transfers are left out.
    eth_total = HUGE + 5 * ETH + 1 * ETH  # 1186591620717411303425 wei
    assert "1186.591620717411303425 ETH" in html
    assert re.search(rf'data-network="anvil" data-asset="ETH" data-units="{eth_total}"', html)
    assert "25 USDC" in html
    assert [(t.asset, t.units) for t in response.context["totals"]] == [("ETH", eth_total), ("USDC", 25_000_000)]

    # Chart: one bar per day with payments, in the last 30 days only, per asset.
    assert bars(html, "ETH") == {"2026-03-15": HUGE, "2026-03-12": 5 * ETH}
    assert bars(html, "USDC") == {"2026-02-14": 24_500_000}
    assert "<script" not in html.split('id="pg-chart"')[1].split("</section>")[0]

    # Sessions by status and payment status.
    sessions = response.context["sessions"]
    assert sessions["by_pair"] == {("complete", "paid"): 2, ("open", "unpaid"): 2, ("expired", "partially_paid"): 1}
    assert sessions["total"] == 5
    complete_row = re.search(r'<tr data-status="complete">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="pg-num">(\d+)</td>', complete_row) == ["0", "0", "0", "2", "0", "2"]

    # Scanners: lag for the scanned network, "not scanned yet" for the idle one.
    anvil = re.search(r'<tr data-network="anvil">(.*?)</tr>', html, re.S).group(1)
    assert '<td class="pg-num">12</td>' in anvil
    assert "RPC timeout on http://127.0.0.1:1" in anvil
    assert "2\xa0minutes ago" in anvil  # timesince joins with a no-break space
    sepolia = re.search(r'<tr data-network="sepolia">(.*?)</tr>', html, re.S).group(1)
    assert "not scanned yet" in sepolia


def test_bars_are_scaled_exactly_to_the_highest_day(world):
    (eth,) = [c for c in dashboard_data(now=NOW)["charts"] if c.asset == "ETH"]
    by_day = {bar.day.isoformat(): bar for bar in eth.bars}
    assert by_day["2026-03-15"].height == CHART_HEIGHT
    assert by_day["2026-03-15"].y == 0
    # 5 ETH against 2**70 wei is far below one pixel: still drawn, one pixel high, sitting on the baseline.
    assert by_day["2026-03-12"].height == 1
    assert by_day["2026-03-12"].y == CHART_HEIGHT - 1
    # Day slots: the last of the 30 is today, three slots before it is 2026-03-12.
    assert by_day["2026-03-15"].x == 29 * (BAR_WIDTH + BAR_GAP)
    assert by_day["2026-03-12"].x == 26 * (BAR_WIDTH + BAR_GAP)


def test_half_the_peak_is_half_the_height():
    session = session_in("complete", "paid")
    pay(session, 3 * ETH, NOW)
    pay(session, 3 * ETH // 2, NOW - timedelta(days=1))
    (chart,) = dashboard_data(now=NOW)["charts"]
    assert [(bar.day.isoformat(), bar.height) for bar in chart.bars] == [
        ("2026-03-14", CHART_HEIGHT // 2),
        ("2026-03-15", CHART_HEIGHT),
    ]
    assert chart.max_display == "3 ETH"


def test_a_network_no_longer_configured_shows_exact_base_units(admin_client, frozen_now):
    session = session_in("complete", "paid", network="oldchain")
    pay(session, HUGE, NOW)
    response = admin_client.get(url())
    assert response.status_code == 200
    assert f"{HUGE} base units of ETH" in response.content.decode()


def test_empty_dashboard(admin_client):
    response = admin_client.get(url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing received yet." in html
    assert html.count("not scanned yet") == 2


def test_linked_from_the_app_index_and_the_sessions_list(admin_client):
    for page in [
        reverse("admin:app_list", args=["payments_gateway"]),
        reverse("admin:payments_gateway_checkoutsession_changelist"),
    ]:
        assert f'href="{url()}"' in admin_client.get(page).content.decode()


def test_anonymous_is_sent_to_login(client):
    response = client.get(url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_non_staff_cannot_see_it(client, world):
    user = get_user_model().objects.create_user("shopper", "shopper@example.com", "pw")
    client.force_login(user)
    response = client.get(url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "1186.59" not in response.content.decode()


def test_staff_without_session_permission_is_refused(client, world):
    user = get_user_model().objects.create_user("clerk", "clerk@shop.example", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    client.force_login(user)
    assert client.get(url()).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_checkoutsession"))
    user = get_user_model().objects.get(pk=user.pk)  # fresh permission cache
    client.force_login(user)
    assert client.get(url()).status_code == 200
