from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from ..models import AddressCounter, ChainCursor, DepositAddress, RpcErrorCount, ScannedBlock, Transfer
from .base import ReadOnlyAdmin


@admin.register(DepositAddress)
class DepositAddressAdmin(ReadOnlyAdmin):
    list_display = ["address", "network", "index", "scheme", "busy_until", "created"]
    list_filter = ["network", "scheme", ("created", admin.DateFieldListFilter)]
    search_fields = ["address"]
    change_list_template = "admin/payments_gateway/depositaddress/change_list.html"

    def get_urls(self):
        # Before the default patterns: "<path:object_id>/" would otherwise take "balances/".
        view = self.admin_site.admin_view
        return [
            path("balances/", view(self.balances_view), name="payments_gateway_depositaddress_balances"),
            path("balances.csv", view(self.balances_csv), name="payments_gateway_depositaddress_balances_csv"),
            *super().get_urls(),
        ]

    def balances_view(self, request):
        """What each deposit address of a network holds now, read on chain (ETH and each configured token)."""
        from ..chain.rpc import RPCError
        from ..conf import gateway_settings
        from ..services.balances import address_balances

        network, error, balances = self._network(request), "", []
        try:
            balances = address_balances(network, nonzero=request.GET.get("all") != "1") if network else []
        except RPCError as exc:
            error = f"The chain could not be read: {exc}"
        context = {
            **self.admin_site.each_context(request),
            "title": f"Deposit address balances on {network}" if network else "Deposit address balances",
            "opts": self.model._meta,
            "network": network,
            "networks": sorted(gateway_settings.networks),
            "balances": balances,
            "error": error,
            "show_all": request.GET.get("all") == "1",
        }
        return TemplateResponse(request, "admin/payments_gateway/deposit_balances.html", context)

    def balances_csv(self, request):
        """CSV of every address of the network and asset (index, address, asset, balance) for wallet tooling."""
        from ..chain.rpc import RPCError
        from ..services.balances import address_balances, balances_csv

        network = self._network(request)
        if not network:
            return HttpResponse("no network configured\n", status=404, content_type="text/plain")
        try:
            text = balances_csv(address_balances(network))
        except RPCError as exc:
            return HttpResponse(f"the chain could not be read: {exc}\n", status=502, content_type="text/plain")
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="deposit-balances-{network}.csv"'
        return response

    def _network(self, request) -> str:
        from ..conf import gateway_settings

        if not self.has_view_permission(request):
            raise PermissionDenied
        names = sorted(gateway_settings.networks)
        wanted = request.GET.get("network", "")
        return wanted if wanted in names else (names[0] if names else "")


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = [
        "tx_hash", "network", "asset", "amount", "to_address", "status", "confirmations", "block_number", "session",
        "reason", "resolution", "detected_at",
    ]  # fmt: skip
    list_filter = [
        "status", "network", "asset", "kind", "reason", "resolution", ("detected_at", admin.DateFieldListFilter),
    ]  # fmt: skip
    search_fields = ["tx_hash", "to_address", "from_address", "session__uuid"]
    list_select_related = ["session"]


@admin.register(ChainCursor)
class ChainCursorAdmin(ReadOnlyAdmin):
    list_display = ["network", "block_number", "head_block", "lag", "last_scan_at", "last_error"]


@admin.register(AddressCounter)
class AddressCounterAdmin(ReadOnlyAdmin):
    list_display = ["network", "next_index"]
    search_fields = ["network"]


@admin.register(ScannedBlock)
class ScannedBlockAdmin(ReadOnlyAdmin):
    list_display = ["network", "number", "hash", "parent_hash"]
    list_filter = ["network"]
    search_fields = ["hash"]


@admin.register(RpcErrorCount)
class RpcErrorCountAdmin(ReadOnlyAdmin):
    """Each RPC URL's failures by kind, as ``/metrics`` reports them (counted by every process)."""

    list_display = ["network", "url", "kind", "count", "last_at", "last_error"]
    list_filter = ["network", "kind"]
