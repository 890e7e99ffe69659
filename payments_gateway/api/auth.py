"""``Authorization: Bearer <key>`` authentication with the gateway's hashed, revocable API keys."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from ..models import APIKey

# Write last_used at most this often per key: one UPDATE per request would serialise busy keys on one row.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class APIKeyAuthentication(authentication.BaseAuthentication):
    """A request with a valid, unrevoked key authenticates as ``(None, api_key)``: ``request.auth`` is the
    :class:`~payments_gateway.models.APIKey`. A missing header leaves the request anonymous (the permission
    answers 401); a malformed, unknown or revoked key is a 401 at once."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode(errors="replace").lower() != self.keyword.lower() or len(header) != 2:
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Bearer <API key>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid text.") from None
        key = APIKey.objects.get_active(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if key.last_used is None or now - key.last_used > LAST_USED_RESOLUTION:
            APIKey.objects.filter(pk=key.pk).update(last_used=now)
            key.last_used = now
        return (None, key)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class HasAPIKey:
    """Permission: the request carries a valid API key."""

    message = "Authentication required: send 'Authorization: Bearer <API key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, APIKey)

    def has_object_permission(self, request, view, obj) -> bool:
        return True


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "payments_gateway.api.auth.APIKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key from the admin or "
                "`manage.py payments_gateway_apikey create <name>`."}  # fmt: skip
