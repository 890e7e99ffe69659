"""API for outgoing webhooks: ``webhook-endpoints/`` (secret shown once, test events, secret rotation) and
``events/`` (list, retrieve with the delivery log, redeliver)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from payments_gateway.models import Event, WebhookEndpoint
from payments_gateway.webhooks.outgoing import delivery as delivery_service
from payments_gateway.webhooks.outgoing import signing

from .checkout import GatewayAPIMixin
from .idempotency import idempotent
from .pagination import Pagination
from .webhook_serializers import (
    EventSerializer,
    RedeliverSerializer,
    RotatedSecretSerializer,
    RotateSecretSerializer,
    TestEventSerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)


class WebhookEndpointViewSet(GatewayAPIMixin, viewsets.ModelViewSet):
    """Endpoints that receive signed events. ``POST`` answers the ``secret`` once; it is never shown again."""

    queryset = WebhookEndpoint.objects.all()
    lookup_field = "uuid"
    write_scope = "webhooks:write"

    def get_serializer_class(self):
        if self.action == "test":
            return TestEventSerializer
        if self.action == "rotate_secret":
            return RotateSecretSerializer
        return WebhookEndpointSerializer

    @extend_schema(responses={201: WebhookEndpointCreatedSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={201: EventSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def test(self, request, uuid=None):
        """Send a sample event of any type (``{"type": "payment.completed"}``) to this endpoint only."""
        endpoint = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = delivery_service.send_test_event(endpoint, serializer.validated_data["type"])
        return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: RotatedSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @idempotent
    def rotate_secret(self, request, uuid=None):
        """New secret (shown once); the old one stays valid for ``overlap_seconds`` (default: the setting)."""
        endpoint = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        seconds = serializer.validated_data.get("overlap_seconds")
        signing.rotate_secret(endpoint, overlap=None if seconds is None else timedelta(seconds=seconds))
        return Response(RotatedSecretSerializer(endpoint).data)


class EventViewSet(GatewayAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Events, newest first, with each delivery and its attempts. ``?type=payment.completed`` filters."""

    pagination_class = Pagination
    write_scope = "webhooks:write"  # redeliver

    def get_queryset(self):
        events = Event.objects.prefetch_related("deliveries__endpoint", "deliveries__attempt_log")
        event_type = self.request.query_params.get("type")
        return events.filter(type=event_type) if event_type else events

    def get_serializer_class(self):
        return RedeliverSerializer if self.action == "redeliver" else EventSerializer

    @extend_schema(responses={202: EventSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def redeliver(self, request, pk=None):
        """Send the event again (same ``webhook-id``): to ``{"endpoint": uuid}``, or to every endpoint it went to."""
        event = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint_uuid = serializer.validated_data.get("endpoint")
        endpoints = None
        if endpoint_uuid is not None:
            endpoints = [get_object_or_404(WebhookEndpoint, uuid=endpoint_uuid)]
        elif not event.deliveries.exists():
            raise serializers.ValidationError({"endpoint": "This event has no deliveries: name an endpoint."})
        with transaction.atomic():
            delivery_service.redeliver(event, endpoints)
        event = self.get_queryset().get(pk=event.pk)
        return Response(EventSerializer(event).data, status=status.HTTP_202_ACCEPTED)
