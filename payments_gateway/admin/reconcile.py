"""Admin for money that arrived wrong: the "Needs attention" list of unmatched transfers (credit, refund, dismiss)
and refunds (the EIP-681 URI and QR code for the merchant's wallet, the customer's claim link, a pasted payment,
cancel). Every action on money writes a Django admin ``LogEntry`` with its reason; the services do the work."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil

from ..chain.rpc import RPCError
from ..conf import gateway_settings
from ..models import CheckoutSession, Refund, RefundStatus, TransferResolution, UnmatchedTransfer
from ..qr import qr_data_uri
from ..scanning.refunds import submit_payment
from ..services import reconciliation, refunds
from .base import ReadOnlyAdmin

FORM_TEMPLATE = "admin/payments_gateway/action_form.html"


class ResolutionFilter(admin.SimpleListFilter):
    """Open (needing attention) by default; the resolved ones on request."""

    title = "resolution"
    parameter_name = "resolution"

    def lookups(self, request, model_admin):
        return [*TransferResolution.choices[1:], ("all", "All")]

    def choices(self, changelist):
        for value, label in [(None, TransferResolution.OPEN.label), *self.lookup_choices]:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: value} if value else {}, [self.parameter_name]
                ),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == "all":
            return queryset
        return queryset.filter(resolution=value or TransferResolution.OPEN)


@admin.register(UnmatchedTransfer)
class NeedsAttentionAdmin(ReadOnlyAdmin):
    """Transfers that settle no session. Open ones first in the list; each page has Credit, Refund and Dismiss."""

    list_display = [
        "detected_at",
        "network",
        "asset",
        "amount",
        "to_address",
        "reason",
        "resolution",
        "session",
        "status",
        "tx_hash",
    ]
    list_filter = [ResolutionFilter, "reason", "network", "asset", ("detected_at", admin.DateFieldListFilter)]
    search_fields = ["tx_hash", "to_address", "from_address", "session__uuid"]
    list_select_related = ["session"]
    readonly_fields = [
        "resolve",
        "network",
        "tx_hash",
        "log_index",
        "block_number",
        "block_time",
        "from_address",
        "to_address",
        "asset",
        "token_address",
        "amount",
        "status",
        "confirmations",
        "session",
        "reason",
        "resolution",
        "resolved_by",
        "resolved_at",
        "resolution_note",
        "refund_list",
    ]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/credit/", view(self.credit_view), name="payments_gateway_unmatched_credit"),
            path("<path:object_id>/refund/", view(self.refund_view), name="payments_gateway_unmatched_refund"),
            path("<path:object_id>/dismiss/", view(self.dismiss_view), name="payments_gateway_unmatched_dismiss"),
            *super().get_urls(),
        ]

    @admin.display(description="Resolve")
    def resolve(self, obj):
        if obj.resolution != TransferResolution.OPEN:
            return "Resolved."
        links = [
            (reverse(f"admin:payments_gateway_unmatched_{name}", args=[obj.pk]), label)
            for name, label in (("credit", "Credit to a session"), ("refund", "Refund"), ("dismiss", "Dismiss"))
        ]
        return format_html_join(" ", '<a class="button" href="{}">{}</a>', links)

    @admin.display(description="Refunds")
    def refund_list(self, obj):
        rows = [
            (reverse("admin:payments_gateway_refund_change", args=[r.pk]), r.amount, r.status)
            for r in obj.refunds.all()
        ]
        return format_html_join(", ", '<a href="{}">{} ({})</a>', rows) or "None"

    def credit_view(self, request, object_id):
        transfer = self._open_transfer(request, object_id)
        candidates = CheckoutSession.objects.filter(
            network=transfer.network, asset=transfer.asset, status__in=["open", "expired"]
        ).order_by("-created")[:20]
        form = CreditForm(request.POST or None, candidates=candidates)
        if request.method == "POST" and form.is_valid():
            session = CheckoutSession.objects.filter(uuid=form.cleaned_data["session"]).first()
            note = form.cleaned_data["note"]
            if session is None:
                form.add_error("session", "No session with this uuid.")
            elif self._run(form, reconciliation.credit_transfer, transfer, session, user=request.user, note=note):
                self.log_change(request, transfer, f"Credited to session {session.uuid}. Reason: {note or '-'}")
                self.message_user(request, f"Transfer {transfer.pk} credited to session {session.uuid}.")
                return HttpResponseRedirect(reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk]))
        return self._form_page(
            request,
            transfer,
            form,
            "Credit to a session",
            "Credit",
            "The transfer then pays the session, which completes if it is paid in full.",
        )

    def refund_view(self, request, object_id):
        transfer = self._open_transfer(request, object_id)
        initial = {"amount": refunds.default_amount(transfer=transfer)}
        form = RefundForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            refund = self._run(
                form,
                refunds.create_refund,
                transfer=transfer,
                amount=data["amount"],
                address=data["address"],
                reason=data["reason"],
                user=request.user,
            )
            if refund:
                self.log_change(
                    request,
                    transfer,
                    f"Refund {refund.uuid} of {refund.amount} created. Reason: {data['reason'] or '-'}",
                )
                return HttpResponseRedirect(reverse("admin:payments_gateway_refund_change", args=[refund.pk]))
        return self._form_page(
            request,
            transfer,
            form,
            "Refund",
            "Create the refund",
            "Without an address, the refund waits for the customer to give theirs through a "
            "link shown on the refund's page.",
        )

    def dismiss_view(self, request, object_id):
        transfer = self._open_transfer(request, object_id)
        form = NoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            note = form.cleaned_data["note"]
            if self._run(form, reconciliation.dismiss_transfer, transfer, user=request.user, note=note):
                self.log_change(request, transfer, f"Dismissed. Reason: {note}")
                self.message_user(request, f"Transfer {transfer.pk} dismissed.")
                return HttpResponseRedirect(reverse("admin:payments_gateway_unmatchedtransfer_changelist"))
        return self._form_page(request, transfer, form, "Dismiss", "Dismiss", "Nothing is done with the money.")

    def _open_transfer(self, request, object_id) -> UnmatchedTransfer:
        if not self.has_view_permission(request) or not request.user.has_perm("payments_gateway.change_transfer"):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=object_id)

    def _run(self, form, function, *args, **kwargs):
        try:
            return function(*args, **kwargs) or True
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return None

    def _form_page(self, request, obj, form, title, submit, intro):
        return action_page(self, request, obj, form, title=f"{title}: transfer {obj.pk}", submit=submit, intro=intro)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """Refunds: the merchant pays each from their wallet (URI + QR here); the scanner sees it and completes it."""

    list_display = ["uuid", "status", "network", "asset", "amount", "address", "session", "transfer", "created"]
    list_filter = ["status", "network", "asset", ("created", admin.DateFieldListFilter)]
    search_fields = ["uuid", "address", "tx_hash", "session__uuid"]
    list_select_related = ["session", "transfer"]
    change_form_template = "admin/payments_gateway/refund/change_form.html"
    readonly_fields = [
        "uuid",
        "status",
        "network",
        "asset",
        "amount",
        "address",
        "session",
        "transfer",
        "reason",
        "tx_hash",
        "block_number",
        "created",
        "initiated_at",
        "completed_at",
        "canceled_at",
    ]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/address/", view(self.address_view), name="payments_gateway_refund_address"),
            path("<path:object_id>/payment/", view(self.payment_view), name="payments_gateway_refund_payment"),
            path("<path:object_id>/cancel/", view(self.cancel_view), name="payments_gateway_refund_cancel"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        refund = Refund.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        extra = {"next_step": self.next_step(request, refund)} if refund else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def next_step(self, request, obj: Refund) -> str:
        """What the merchant does next: send the claim link, or pay (URI + QR), or nothing."""

        def link(name, label):
            url = reverse(f"admin:payments_gateway_refund_{name}", args=[obj.pk])
            return format_html('<a class="button" href="{}">{}</a>', url, label)

        if obj.status == RefundStatus.AWAITING_ADDRESS:
            claim = request.build_absolute_uri(
                reverse("payments_gateway:refund-claim", args=[refunds.claim_token(obj)])
            )
            valid = timeuntil(timezone.now() + gateway_settings.REFUND_LINK_TTL)
            return format_html(
                '<p>Send the customer this link (valid for {}): <code id="claim-link">{}</code></p><p>{} {}</p>',
                valid,
                claim,
                link("address", "Enter the address yourself"),
                link("cancel", "Cancel the refund"),
            )
        if obj.status == RefundStatus.INITIATED:
            uri = refunds.refund_uri(obj)
            qr = format_html('<img id="refund-qr" src="{}" alt="QR code" width="200">', qr_data_uri(uri)) if uri else ""
            return format_html(
                '<p>Pay it from your wallet: scan the code or open <code id="refund-uri">{}</code>.</p>{}'
                "<p>The scanner completes the refund when the payment is confirmed. {} {}</p>",
                uri or "(network not configured)",
                qr,
                link("payment", "I paid: enter the transaction hash"),
                link("cancel", "Cancel the refund"),
            )
        return format_html("<p>Nothing: the refund is {}.</p>", obj.get_status_display().lower())

    def address_view(self, request, object_id):
        refund = self._refund(request, object_id, RefundStatus.AWAITING_ADDRESS)
        form = AddressForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            address = form.cleaned_data["address"]
            try:
                refunds.set_refund_address(refund, address, address, merchant=True)
            except ValidationError as exc:
                form.add_error("address", exc.message_dict.get("address", exc.messages))
            else:
                self.log_change(request, refund, f"Address set to {refund.address} by the merchant.")
                return HttpResponseRedirect(reverse("admin:payments_gateway_refund_change", args=[refund.pk]))
        return action_page(
            self,
            request,
            refund,
            form,
            title="Refund address",
            submit="Save",
            intro="Where the refund goes, on " + refund.network + ".",
        )

    def payment_view(self, request, object_id):
        refund = self._refund(request, object_id, RefundStatus.INITIATED)
        form = PaymentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            tx_hash = form.cleaned_data["tx_hash"]
            try:
                done = submit_payment(refund, tx_hash)
            except ValidationError as exc:
                form.add_error("tx_hash", exc.message_dict.get("tx_hash", exc.messages))
            except RPCError as exc:
                form.add_error("tx_hash", f"The transaction cannot be checked on chain now: {exc}")
            else:
                state = "completed" if done else "recorded; it completes once confirmed"
                self.log_change(request, refund, f"Payment {tx_hash} entered by the merchant: {state}.")
                self.message_user(request, f"Payment {tx_hash} checked on chain: {state}.")
                return HttpResponseRedirect(reverse("admin:payments_gateway_refund_change", args=[refund.pk]))
        return action_page(
            self,
            request,
            refund,
            form,
            title="Refund payment",
            submit="Check on chain",
            intro="The transaction is checked on chain: it must send at least the refund's amount "
            "of its asset to its address, after the refund was created.",
        )

    def cancel_view(self, request, object_id):
        refund = self._refund(request, object_id, *refunds.OPEN)
        form = NoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            note = form.cleaned_data["note"]
            try:
                refunds.cancel_refund(refund, reason=note)
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                self.log_change(request, refund, f"Canceled. Reason: {note}")
                return HttpResponseRedirect(reverse("admin:payments_gateway_refund_change", args=[refund.pk]))
        return action_page(
            self,
            request,
            refund,
            form,
            title="Cancel refund",
            submit="Cancel the refund",
            intro="The refund will not be paid.",
        )

    def _refund(self, request, object_id, *statuses) -> Refund:
        if not request.user.has_perm("payments_gateway.change_refund"):
            raise PermissionDenied
        refund = get_object_or_404(Refund, pk=object_id)
        if refund.status not in statuses:
            messages.error(request, f"The refund is {refund.status}.")
            raise PermissionDenied(f"The refund is {refund.status}.")
        return refund


# --- forms, the action page -------------------------------------------------------------------------------------


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text="Why (kept in the log)."
    )


class CreditForm(forms.Form):
    session = forms.UUIDField(help_text="The uuid of the session it pays (same network and asset).")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, required=False)

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        listed = ", ".join(f"{s.uuid} ({s.status}, order {s.order_id})" for s in candidates)
        if listed:
            self.fields["session"].help_text += f" Recent candidates: {listed}."


class RefundForm(forms.Form):
    amount = forms.CharField(help_text="Base units (default: all of it).")
    address = forms.CharField(required=False, max_length=100, help_text="Empty: ask the customer through a link.")
    reason = forms.CharField(required=False, max_length=500)


class AddressForm(forms.Form):
    address = forms.CharField(max_length=100, help_text="EIP-55 checksummed (or all lowercase).")


class PaymentForm(forms.Form):
    tx_hash = forms.CharField(max_length=100, label="Transaction hash")


def action_page(model_admin, request, obj, form, *, title, submit, intro):
    """The admin page of one action on ``obj``: ``form`` (errors shown), a submit button, a link back."""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "submit": submit,
        "opts": model_admin.model._meta,
        "object": obj,
        "back_url": reverse(f"admin:{obj._meta.app_label}_{model_admin.model._meta.model_name}_change", args=[obj.pk]),
    }
    return TemplateResponse(request, FORM_TEMPLATE, context, status=400 if form.errors else 200)
