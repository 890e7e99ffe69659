"""API authentication: ``Authorization: Bearer <key>`` with a key from ``payments_gateway_apikey create``."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from payments_gateway.models import APIKey


class APIKeyUser:
    """``request.user`` for a request made with an API key (``request.auth`` is the :class:`APIKey`)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, key: APIKey):
        self.api_key = key
        self.pk = None
        self.username = f"apikey:{key.prefix}"

    def __str__(self) -> str:
        return self.username


class APIKeyAuthentication(BaseAuthentication):
    """Bearer API keys. Missing, malformed, unknown or revoked keys get a 401 with a JSON ``detail``."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None  # the permission check answers 401 "Authentication credentials were not provided."
        if header[0].decode(errors="replace").lower() != self.keyword.lower() or len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: send 'Bearer <API key>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = APIKey.objects.get_active(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        APIKey.objects.filter(pk=key.pk).update(last_used=now)
        key.last_used = now
        return APIKeyUser(key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return f'{self.keyword} realm="api"'


class HasAPIKey(BasePermission):
    """Allow requests authenticated with an active API key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, APIKey)
