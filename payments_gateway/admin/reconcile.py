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
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil

from ..chain.rpc import RPCError
from ..conf import gateway_settings
from ..models import CheckoutSession, Refund, RefundStatus, TransferResolution, UnmatchedTransfer
from ..qr import qr_data_uri
from ..scanning.refunds import submit_payment
from ..services import reconciliation, refunds
from .base import ReadOnlyAdmin, action_urls

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
        return [*action_urls(self, "unmatched", "credit", "refund", "dismiss"), *super().get_urls()]

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

        def credit(data):
            session = CheckoutSession.objects.filter(uuid=data["session"]).first()
            if session is None:
                raise ValidationError({"session": ["No session with this uuid."]})
            reconciliation.credit_transfer(transfer, session, user=request.user, note=data["note"])
            self.message_user(request, f"Transfer {transfer.pk} credited to session {session.uuid}.")
            logged = f"Credited to session {session.uuid}. Reason: {data['note'] or '-'}"
            return logged, reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk])

        return run_action(
            self,
            request,
            transfer,
            CreditForm(request.POST or None, candidates=candidates),
            credit,
            title=f"Credit to a session: transfer {transfer.pk}",
            submit="Credit",
            intro="The transfer then pays the session, which completes if it is paid in full.",
        )

    def refund_view(self, request, object_id):
        transfer = self._open_transfer(request, object_id)

        def refund(data):
            amount, address, reason = data["amount"], data["address"], data["reason"]
            created = refunds.create_refund(
                transfer=transfer, amount=amount, address=address, reason=reason, user=request.user
            )
            logged = f"Refund {created.uuid} of {created.amount} created. Reason: {reason or '-'}"
            return logged, reverse("admin:payments_gateway_refund_change", args=[created.pk])

        return run_action(
            self,
            request,
            transfer,
            RefundForm(request.POST or None, initial={"amount": refunds.default_amount(transfer=transfer)}),
            refund,
            title=f"Refund: transfer {transfer.pk}",
            submit="Create the refund",
            intro="Without an address, the refund waits for the customer to give theirs through a "
            "link shown on the refund's page.",
        )

    def dismiss_view(self, request, object_id):
        transfer = self._open_transfer(request, object_id)

        def dismiss(data):
            reconciliation.dismiss_transfer(transfer, user=request.user, note=data["note"])
            self.message_user(request, f"Transfer {transfer.pk} dismissed.")
            return f"Dismissed. Reason: {data['note']}", reverse("admin:payments_gateway_unmatchedtransfer_changelist")

        return run_action(
            self,
            request,
            transfer,
            NoteForm(request.POST or None),
            dismiss,
            title=f"Dismiss: transfer {transfer.pk}",
            submit="Dismiss",
            intro="Nothing is done with the money.",
        )

    def _open_transfer(self, request, object_id) -> UnmatchedTransfer:
        if not self.has_view_permission(request) or not request.user.has_perm("payments_gateway.change_transfer"):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=object_id)


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
        return [*action_urls(self, "refund", "address", "payment", "cancel"), *super().get_urls()]

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

        def set_address(data):
            refunds.set_refund_address(refund, data["address"], data["address"], merchant=True)
            return f"Address set to {refund.address} by the merchant.", self._page(refund)

        return run_action(
            self,
            request,
            refund,
            AddressForm(request.POST or None),
            set_address,
            title="Refund address",
            submit="Save",
            intro="Where the refund goes, on " + refund.network + ".",
        )

    def payment_view(self, request, object_id):
        refund = self._refund(request, object_id, RefundStatus.INITIATED)

        def check_payment(data):
            tx_hash = data["tx_hash"]
            try:
                done = submit_payment(refund, tx_hash)
            except RPCError as exc:
                raise ValidationError({"tx_hash": [f"The transaction cannot be checked on chain now: {exc}"]}) from None
            state = "completed" if done else "recorded; it completes once confirmed"
            self.message_user(request, f"Payment {tx_hash} checked on chain: {state}.")
            return f"Payment {tx_hash} entered by the merchant: {state}.", self._page(refund)

        return run_action(
            self,
            request,
            refund,
            PaymentForm(request.POST or None),
            check_payment,
            title="Refund payment",
            submit="Check on chain",
            intro="The transaction is checked on chain: it must send at least the refund's amount "
            "of its asset to its address, after the refund was created.",
        )

    def cancel_view(self, request, object_id):
        refund = self._refund(request, object_id, *refunds.OPEN)

        def cancel(data):
            refunds.cancel_refund(refund, reason=data["note"])
            return f"Canceled. Reason: {data['note']}", self._page(refund)

        return run_action(
            self,
            request,
            refund,
            NoteForm(request.POST or None),
            cancel,
            title="Cancel refund",
            submit="Cancel the refund",
            intro="The refund will not be paid.",
        )

    def _page(self, refund: Refund) -> str:
        return reverse("admin:payments_gateway_refund_change", args=[refund.pk])

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


def run_action(model_admin, request, obj, form, act, *, title, submit, intro):
    """The admin page of one action on ``obj``: ``form`` with a submit button and a link back. On a valid POST,
    ``act(form.cleaned_data)`` does the work and returns (what the admin log says, where to go next); the change is
    logged and the browser redirected. A ``ValidationError`` it raises is shown on the form's field it names (above
    the form for any other), and the page is shown again with status 400."""
    if request.method == "POST" and form.is_valid():
        try:
            logged, next_url = act(form.cleaned_data)
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for field, field_errors in errors.items():
                form.add_error(field if field in form.fields else None, field_errors)
        else:
            model_admin.log_change(request, obj, logged)
            return HttpResponseRedirect(next_url)
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
