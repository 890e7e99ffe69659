"""API authentication: ``Authorization: Bearer <key>`` with a key from ``payments_gateway_apikey create``, and
the key's scopes: every GET needs ``read``; every other method the view's ``write_scope``.

``last_used`` is written at most once a minute per key (:data:`LAST_USED_PRECISION`), by one conditional
``UPDATE ... WHERE last_used < now - 60 s``: a busy key costs no write per request, and two processes racing
write it once.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from payments_gateway.models import APIKey
from payments_gateway.models.apikeys import READ_SCOPE

LAST_USED_PRECISION = timedelta(minutes=1)


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
        touch(key)
        return APIKeyUser(key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return f'{self.keyword} realm="api"'


def touch(key: APIKey) -> None:
    """Record that ``key`` was used now, unless that was recorded less than a minute ago (then no query at all)."""
    now = timezone.now()
    stale = now - LAST_USED_PRECISION
    if key.last_used is not None and key.last_used >= stale:
        return
    fresh = APIKey.objects.filter(Q(last_used__isnull=True) | Q(last_used__lt=stale), pk=key.pk)
    if fresh.update(last_used=now):
        key.last_used = now


class MissingScope(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "missing_scope"


class HasAPIKey(BasePermission):
    """Allow requests authenticated with an active API key (any scope)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, APIKey)


class HasScope(HasAPIKey):
    """An active API key with the scope the request needs: ``read`` for GET/HEAD/OPTIONS, else the view's
    ``write_scope``. A key without it gets 403 naming the missing scope."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        scope = required_scope(view, request.method)
        if not request.auth.has_scope(scope):
            raise MissingScope(
                f"This API key lacks the scope {scope!r} needed for {request.method} {request.path}; "
                f"its scopes: {', '.join(request.auth.scopes) or 'none'}."
            )
        return True


def required_scope(view, method: str) -> str:
    """The scope ``method`` on ``view`` needs (every API view declares its ``write_scope``)."""
    return READ_SCOPE if method in SAFE_METHODS else view.write_scope
