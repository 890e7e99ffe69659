"""Forwarder sweeps in the admin: the log of sweeps, what waits to be swept, and "Sweep now"."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from ..models import Sweep, SweptAddress
from .base import ReadOnlyAdmin, ReadOnlyInline


class SweptAddressInline(ReadOnlyInline):
    model = SweptAddress
    fields = ["deposit_address", "balance", "eth_amount", "failed"]
    readonly_fields = ["deposit_address", "balance", "eth_amount", "failed"]
    show_change_link = False


@admin.register(Sweep)
class SweepAdmin(ReadOnlyAdmin):
    list_display = ["tx_hash", "network", "asset", "amount", "planned_amount", "status", "origin", "gas_used",
                    "block_number", "created"]  # fmt: skip
    list_filter = ["status", "network", "asset", "origin", ("created", admin.DateFieldListFilter)]
    search_fields = ["tx_hash", "treasury", "swept__deposit_address__address"]
    readonly_fields = ["network", "asset", "token_address", "treasury", "factory", "amount", "planned_amount",
                       "status", "origin", "tx_hash", "sender", "nonce", "gas_limit", "gas_used", "block_number",
                       "block_hash", "error", "created", "mined_at", "confirmed_at"]  # fmt: skip
    exclude = ["raw_transaction"]
    inlines = [SweptAddressInline]
    change_list_template = "admin/payments_gateway/sweep/change_list.html"

    def get_urls(self):
        sweep_now = path("sweep-now/", self.admin_site.admin_view(self.sweep_now), name="payments_gateway_sweep_now")
        return [sweep_now, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        from ..services.balances import forwarder_overviews

        context = {"forwarders": forwarder_overviews(), "can_sweep": _can_sweep(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def sweep_now(self, request):
        """POST: sweep every forwarder network now, whatever the policy says; each sweep sent is logged (who,
        when) in Django's admin log."""
        from ..conf import gateway_settings
        from ..services.sweeps import run_sweeps

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not _can_sweep(request):
            raise PermissionDenied
        sent = 0
        for name, config in sorted(gateway_settings.networks.items()):
            if config.deposit_scheme != "forwarder":
                continue
            try:
                run = run_sweeps(name, force=True)
            except Exception as exc:  # an unreachable node must not become a 500 page: show it, change nothing
                self.message_user(request, f"{name}: sweeping failed: {exc}", messages.ERROR)
                continue
            for sweep in run.sent:
                self.log_addition(request, sweep, f"Sweep now: {sweep.asset} from {sweep.swept.count()} addresses")
                sent += 1
            for problem in run.problems:
                self.message_user(request, problem, messages.ERROR)
        level = messages.SUCCESS if sent else messages.INFO
        self.message_user(request, f"{sent} sweep(s) sent." if sent else "Nothing to sweep.", level)
        return HttpResponseRedirect(reverse("admin:payments_gateway_sweep_changelist"))


def _can_sweep(request) -> bool:
    return request.user.has_perm("payments_gateway.add_sweep")


@admin.register(SweptAddress)
class SweptAddressAdmin(ReadOnlyAdmin):
    list_display = ["deposit_address", "sweep", "balance", "eth_amount", "failed"]
    list_filter = ["failed", "sweep__network", "sweep__status"]
    search_fields = ["deposit_address__address", "sweep__tx_hash"]
    list_select_related = ["deposit_address", "sweep"]
