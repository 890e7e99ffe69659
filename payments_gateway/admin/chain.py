from django.contrib import admin

from ..models import AddressCounter, ChainCursor, DepositAddress, ScannedBlock, Transfer
from .base import ReadOnlyAdmin


@admin.register(DepositAddress)
class DepositAddressAdmin(ReadOnlyAdmin):
    list_display = ["address", "network", "index", "busy_until", "created"]
    list_filter = ["network", ("created", admin.DateFieldListFilter)]
    search_fields = ["address"]


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
