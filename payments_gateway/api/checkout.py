"""API views: checkout sessions, their transaction status, customers. Thin: the services do the work."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import CheckoutSession, Customer, SessionType
from ..pricing import RateUnavailable
from ..services.customers import create_customer, update_customer
from ..services.payments import expire_if_due, expire_session
from ..services.sessions import create_session
from ..services.subscriptions import create_subscription_session
from .auth import APIKeyAuthentication, HasScope
from .errors import exception_handler
from .idempotency import HEADER, idempotent
from .pagination import Pagination
from .parsers import SafeJSONParser
from .schema import GatewaySchema
from .serializers import (
    CustomerSerializer,
    SessionCreateSerializer,
    SessionSerializer,
    TransactionStatusSerializer,
)

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Same key + same body → the same response; a different body → 400; while running → 409.",
)
INCLUDE_PARAMETER = OpenApiParameter(
    "include",
    str,
    enum=["qr_code"],
    description="`qr_code`: also draw the session's QR code (`qr_code`, a PNG data URI); without it, null.",
)
INCLUDABLE = ("qr_code",)
AUTH_REQUIRED = "Authentication required: send 'Authorization: Bearer <API key>'."
ERRORS = {
    400: OpenApiResponse(description="Invalid request: `error.fields` names each bad field."),
    401: OpenApiResponse(description="Missing, invalid or revoked API key."),
    404: OpenApiResponse(description="No such object."),
}


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "rate_unavailable"


class GatewayAPIMixin(APIView):
    """API key auth, scopes and JSON errors on every API view, without touching the project's REST_FRAMEWORK
    setting. Each view names the scope its POSTs need (``write_scope``); GETs need ``read``."""

    authentication_classes = [APIKeyAuthentication]
    permission_classes = [HasScope]
    schema = GatewaySchema()
    write_scope: str
    parser_classes = [SafeJSONParser]

    def get_exception_handler(self):
        return exception_handler

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated(AUTH_REQUIRED)
        super().permission_denied(request, message, code)


@extend_schema_view(
    create=extend_schema(
        summary="Create a checkout session",
        request=SessionCreateSerializer,
        responses={
            201: SessionSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            409: OpenApiResponse(description="Idempotency-Key in use."),
            503: OpenApiResponse(description="No price can be quoted right now (the rate provider is unavailable)."),
        },
        parameters=[IDEMPOTENCY_PARAMETER, INCLUDE_PARAMETER],
    ),
    retrieve=extend_schema(
        summary="Retrieve a checkout session",
        responses={200: SessionSerializer, **ERRORS},
        parameters=[INCLUDE_PARAMETER],
    ),
)
class SessionViewSet(GatewayAPIMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Checkout sessions. A read expires a session whose time is up, so no caller sees a stale open one."""

    serializer_class = SessionSerializer
    lookup_field = "uuid"
    write_scope = "sessions:write"
    queryset = CheckoutSession.objects.select_related("order", "customer", "deposit_address")

    def get_object(self):
        return expire_if_due(super().get_object())

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "include": self._include()}

    def _include(self) -> set[str]:
        """``?include=qr_code`` (comma-separated, repeatable); anything else is a 400 naming what is known."""
        names = {n.strip() for v in self.request.query_params.getlist("include") for n in v.split(",") if n.strip()}
        unknown = sorted(names - set(INCLUDABLE))
        if unknown:
            raise exceptions.ValidationError(
                {"include": [f"unknown {unknown[0]!r}; what can be included: {', '.join(INCLUDABLE)}."]}
            )
        return names

    @idempotent
    def create(self, request, *args, **kwargs):
        self._include()  # a bad ?include= is refused before anything is written
        form = SessionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        fields = dict(form.validated_data)
        try:
            if fields.get("type") == SessionType.CREATE_SUBSCRIPTION:
                session = create_subscription_session(**{name: v for name, v in fields.items() if name != "type"})
            else:
                session = create_session(**fields)
        except DjangoValidationError as exc:
            # A ValidationError raised deeper (a model field) may carry a message without a field.
            raise exceptions.ValidationError(getattr(exc, "message_dict", {"non_field_errors": exc.messages}))
        except RateUnavailable as exc:
            raise ServiceUnavailable(f"No price can be quoted right now: {exc}")
        answer = self.get_serializer(session, context=self.get_serializer_context() | {"new_session": True})
        return Response(answer.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Expire an open checkout session now",
        request=None,
        responses={200: SessionSerializer, **ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def expire(self, request, *args, **kwargs):
        session = self.get_object()
        try:
            session = expire_session(session)
        except ValueError as exc:
            raise exceptions.ValidationError({"status": [str(exc)]})
        return Response(self.get_serializer(session).data)


class TransactionStatusView(GatewayAPIMixin, APIView):
    """Where a session's payment stands: statuses, amounts, and each transfer with its confirmations."""

    write_scope = "read"  # GET only

    @extend_schema(summary="Payment status of a checkout session", responses={200: TransactionStatusSerializer,
                   **ERRORS})  # fmt: skip
    def get(self, request, uuid):
        session = CheckoutSession.objects.filter(uuid=uuid).select_related("deposit_address").first()
        if session is None:
            raise Http404(f"No checkout session {uuid}.")
        session = expire_if_due(session)
        return Response(TransactionStatusSerializer(session).data)


@extend_schema_view(
    list=extend_schema(summary="List customers"),
    create=extend_schema(summary="Create a customer", parameters=[IDEMPOTENCY_PARAMETER]),
    retrieve=extend_schema(summary="Retrieve a customer"),
    update=extend_schema(summary="Replace a customer"),
    partial_update=extend_schema(summary="Update a customer"),
)
class CustomerViewSet(
    GatewayAPIMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Customers. Creating one emits ``customer.created``; a change emits ``customer.updated``."""

    serializer_class = CustomerSerializer
    lookup_field = "uuid"
    write_scope = "sessions:write"  # customers are made for checkouts (and by them)
    queryset = Customer.objects.order_by("-created", "-pk")
    pagination_class = Pagination

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = create_customer(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = update_customer(serializer.instance, **serializer.validated_data)
