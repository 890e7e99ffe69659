"""Serializers of the webhook API (``payments_gateway.api.webhooks``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments_gateway.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payments_gateway.models.outgoing import EVENT_TYPES
from payments_gateway.webhooks.outgoing import ssrf

from .strict import StrictBooleanField, StrictModelSerializer, StrictSerializer


@extend_schema_field({"type": "string", "enum": ["*", *EVENT_TYPES]})
class EventTypeField(serializers.CharField):
    """An event type or ``*`` (checked, with the known ones named, by ``validate_event_types``)."""


# What ssrf.validate_endpoint_url takes (Django's URLValidator, https), in the form the schema can state: host
# labels of at most 63 characters and a letter-only top-level domain, a port, a path.
ENDPOINT_URL_PATTERN = (
    r"^https://([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.){1,3}[a-z]{2,24}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$"
)


@extend_schema_field({"type": "string", "format": "uri", "pattern": ENDPOINT_URL_PATTERN, "maxLength": 200})
class EndpointURLField(serializers.CharField):
    """An http(s) URL (its host is checked by ``ssrf.validate_endpoint_url``)."""


class WebhookEndpointSerializer(StrictModelSerializer):
    url = EndpointURLField(max_length=200, help_text="Where events are POSTed (http or https).")
    active = StrictBooleanField(required=False, help_text="false: hold deliveries (default true).")
    enabled_events = serializers.ListField(
        child=EventTypeField(),
        required=False,
        help_text='Event types to receive; empty or ["*"]: all.',
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "uuid",
            "url",
            "description",
            "enabled_events",
            "signature_format",
            "active",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "created",
        ]
        read_only_fields = ["uuid", "disabled_reason", "disabled_at", "failing_since", "created"]
        extra_kwargs: dict[str, dict] = {"url": {"validators": []}}

    def validate_url(self, value: str) -> str:
        try:
            ssrf.validate_endpoint_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value

    def validate_enabled_events(self, value: list[str]) -> list[str]:
        return validate_event_types(value)

    def update(self, instance, validated_data):
        if validated_data.get("active") and not instance.active:
            # Re-enabling starts afresh; deliveries held while disabled go out again.
            instance.disabled_reason, instance.disabled_at, instance.failing_since = "", None, None
        return super().update(instance, validated_data)


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The answer to a create: the endpoint and, this once, its signing secret."""

    secret = serializers.CharField(read_only=True, help_text="whsec_...: shown only in this answer.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class RotatedSecretSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["uuid", "secret", "previous_secret_expires"]
        read_only_fields = fields


def validate_event_types(value: list[str]) -> list[str]:
    """Refuse unknown event types, naming them and the known ones."""
    unknown = [t for t in value if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise serializers.ValidationError(
            f"Unknown event type(s) {', '.join(unknown)}. Known: *, {', '.join(EVENT_TYPES)}."
        )
    return list(dict.fromkeys(value))


class TestEventSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=EVENT_TYPES, default="payment.completed")


class RotateSecretSerializer(StrictSerializer):
    overlap_seconds = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False)


class RedeliverSerializer(StrictSerializer):
    endpoint = serializers.UUIDField(required=False, help_text="Only to this endpoint (default: all it went to).")


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["started_at", "duration_ms", "status_code", "success", "error", "response_excerpt"]


class DeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint.uuid")
    url = serializers.CharField(source="endpoint.url")
    attempt_log = AttemptSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "endpoint",
            "url",
            "state",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "attempt_log",
        ]


class EventSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Event
        fields = ["id", "type", "created", "livemode", "data", "deliveries"]
