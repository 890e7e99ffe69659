"""API views of reconciliation: ``transfers/`` (list, ``?unmatched=1``, resolve) and ``refunds/`` (create, list,
retrieve, cancel, a pasted payment). Thin: ``services/reconciliation.py`` and ``services/refunds.py`` do the work.

Write scopes: ``transfers:write`` for resolving, ``refunds:write`` for refunds (``write_scope`` on each view).
"""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..chain.rpc import RPCError
from ..models import CheckoutSession, Refund, RefundStatus, Transfer, TransferReason, TransferResolution, TransferStatus
from ..scanning.refunds import submit_payment
from ..services import reconciliation, refunds
from .checkout import ERRORS, IDEMPOTENCY_PARAMETER, GatewayAPIMixin
from .idempotency import idempotent
from .pagination import Pagination
from .reconcile_serializers import (
    RefundCancelSerializer,
    RefundCreateSerializer,
    RefundPaymentSerializer,
    RefundSerializer,
    ResolveSerializer,
    TransferResourceSerializer,
)

# The form of a uuid the schema's "format: uuid" accepts (uuid.UUID would also take braces or no hyphens).
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CONFLICT = {409: OpenApiResponse(description="Idempotency-Key in use by a request still running.")}
FILTERS = {
    "network": "network",
    "asset": "asset",
    "reason": "reason",
    "resolution": "resolution",
    "status": "status",
    "session": "session__uuid",
}
CHOICES = {
    "reason": TransferReason.values,
    "resolution": TransferResolution.values,
    "status": TransferStatus.values,
}


class NodeUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "node_unavailable"


@extend_schema_view(
    list=extend_schema(
        summary="List transfers seen on chain",
        parameters=[
            OpenApiParameter("unmatched", bool, description="1: only transfers that need attention (open)."),
            *[
                OpenApiParameter(
                    name,
                    uuid.UUID if name == "session" else str,
                    enum=CHOICES.get(name),
                    description=f"Only this {name}.",
                )
                for name in FILTERS
            ],
        ],
        responses={200: TransferResourceSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="Retrieve a transfer", responses={200: TransferResourceSerializer, **ERRORS}),
)
class TransferViewSet(GatewayAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every transfer to a deposit address, newest first; ``?unmatched=1`` lists those that need attention."""

    serializer_class = TransferResourceSerializer
    pagination_class = Pagination
    write_scope = "transfers:write"

    def get_queryset(self) -> QuerySet[Transfer]:
        params = self.request.query_params
        transfers = Transfer.objects.select_related("session").prefetch_related("refunds__session")
        if params.get("unmatched") in {"1", "true"}:
            transfers = reconciliation.unmatched_transfers()
        elif params.get("unmatched") not in {None, "0", "false"}:
            raise exceptions.ValidationError({"unmatched": ["give 1 (only unmatched) or 0."]})
        for param, lookup in FILTERS.items():
            if param not in params:
                continue
            value = params[param]
            _check_choice(param, value, CHOICES.get(param))
            transfers = transfers.filter(**{lookup: value}) if param != "session" else _by_session(transfers, value)
        return transfers.order_by("-detected_at", "-pk")

    @extend_schema(
        summary="Resolve an unmatched transfer: credit it to a session, refund it, or dismiss it",
        request=ResolveSerializer,
        responses={200: TransferResourceSerializer, **ERRORS, **CONFLICT},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def resolve(self, request, pk=None):
        transfer = self.get_object()
        form = ResolveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        note = data.get("note", "")
        try:
            if data["action"] == "credit":
                if "session" not in data:
                    raise DjangoValidationError({"session": ["give the uuid of the session to credit."]})
                session = CheckoutSession.objects.filter(uuid=data["session"]).first()
                if session is None:
                    raise DjangoValidationError({"session": [f"no session {data['session']}."]})
                reconciliation.credit_transfer(transfer, session, note=note)
            elif data["action"] == "dismiss":
                reconciliation.dismiss_transfer(transfer, note=note)
            else:
                refunds.create_refund(
                    transfer=transfer, amount=data.get("amount"), address=data.get("address", ""), reason=note
                )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict)
        return Response(self.get_serializer(self.get_queryset().get(pk=transfer.pk)).data)


@extend_schema_view(
    list=extend_schema(
        summary="List refunds",
        parameters=[
            OpenApiParameter("status", str, enum=RefundStatus.values, description="Only refunds in this status."),
            OpenApiParameter("session", uuid.UUID, description="Only refunds of this session (uuid)."),
        ],
        responses={200: RefundSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="Retrieve a refund", responses={200: RefundSerializer, **ERRORS}),
    create=extend_schema(
        summary="Refund a session or an unmatched transfer",
        request=RefundCreateSerializer,
        responses={201: RefundSerializer, **ERRORS, **CONFLICT},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
)
class RefundViewSet(GatewayAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Refunds, newest first. The merchant pays each from their own wallet; the scanner sees it done."""

    serializer_class = RefundSerializer
    pagination_class = Pagination
    lookup_field = "uuid"
    write_scope = "refunds:write"

    def get_queryset(self) -> QuerySet[Refund]:
        params = self.request.query_params
        found = Refund.objects.select_related("session", "transfer")
        if "status" in params:
            value = params["status"]
            _check_choice("status", value, RefundStatus.values)
            found = found.filter(status=value)
        if "session" in params:
            found = _by_session(found, params["session"])
        return found.order_by("-created", "-pk")

    @idempotent
    def create(self, request, *args, **kwargs):
        form = RefundCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        target: dict = {}
        if "session" in data:
            target["session"] = CheckoutSession.objects.filter(uuid=data["session"]).first()
            if target["session"] is None:
                raise exceptions.ValidationError({"session": [f"no session {data['session']}."]})
        if "transfer" in data:
            target["transfer"] = Transfer.objects.filter(pk=data["transfer"]).first()
            if target["transfer"] is None:
                raise exceptions.ValidationError({"transfer": [f"no transfer {data['transfer']}."]})
        try:
            refund = refunds.create_refund(
                **target, amount=data.get("amount"), address=data.get("address", ""), reason=data.get("reason", "")
            )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict)
        return Response(self.get_serializer(refund).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Cancel a refund that is not completed",
        request=RefundCancelSerializer,
        responses={200: RefundSerializer, **ERRORS, **CONFLICT},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, uuid=None):
        refund = self.get_object()
        form = RefundCancelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            refund = refunds.cancel_refund(refund, reason=form.validated_data.get("reason", ""))
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict)
        return Response(self.get_serializer(refund).data)

    @extend_schema(
        summary="Give the hash of the refund's payment; it is checked on chain",
        request=RefundPaymentSerializer,
        responses={
            200: RefundSerializer,
            **ERRORS,
            **CONFLICT,
            503: OpenApiResponse(description="The node is unreachable."),
        },
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def payment(self, request, uuid=None):
        refund = self.get_object()
        form = RefundPaymentSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            submit_payment(refund, form.validated_data["tx_hash"])
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict)
        except RPCError as exc:
            raise NodeUnavailable(f"The transaction cannot be checked on chain now: {exc}")
        return Response(self.get_serializer(self.get_queryset().get(pk=refund.pk)).data)


def _check_choice(param: str, value: str, choices: list[str] | None) -> None:
    if choices is not None and value not in choices:
        raise exceptions.ValidationError({param: [f"{value!r} is not one of {', '.join(choices)}."]})


def _by_session(queryset: QuerySet, value: str) -> QuerySet:
    try:
        if not CANONICAL_UUID.fullmatch(value):
            raise ValueError(value)
        return queryset.filter(session__uuid=uuid.UUID(value))
    except ValueError:
        raise exceptions.ValidationError({"session": [f"{value!r} is not a session uuid."]}) from None
