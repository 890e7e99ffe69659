"""JSON errors for every API failure: ``{"error": {"status", "code", "message", "fields"?}}``.

``message`` is one readable sentence naming what is wrong; ``fields`` maps each bad request field to its
messages (field-level 400s). Django's ``Http404``, ``ValidationError`` and ``SuspiciousOperation`` (a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE``: 400, as Django answers it) are translated too, and errors are always rendered
as JSON, whatever the ``Accept`` header asks for, so no view can answer with an HTML page (the browsable API's
included) or a bare DRF ``{"detail": ...}``. An error of ours is left to Django: a 500, logged and reported.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class BadRequest(exceptions.APIException):
    """A request Django itself refuses (``SuspiciousOperation``), e.g. a body too large to read."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER`` for the gateway's API views."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, SuspiciousOperation):
        exc = _bad_request(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: let Django log it and answer 500
    response.data = {"error": error_body(exc, response.status_code)}
    request = context.get("request")
    if request is not None:
        # The negotiated renderer may be the browsable API's HTML: an error is JSON for every client.
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response


def error_body(exc: Exception, status_code: int) -> dict[str, Any]:
    detail = getattr(exc, "detail", str(exc))
    body: dict[str, Any] = {"status": status_code, "code": _code(exc, status_code)}
    if isinstance(exc, exceptions.ValidationError):
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        fields = {name: _messages(value) for name, value in fields.items()}
        body["message"] = "; ".join(
            f"{name}: {' '.join(msgs)}" if name != "non_field_errors" else " ".join(msgs)
            for name, msgs in fields.items()
        )
        body["fields"] = fields
    else:
        body["message"] = " ".join(_messages(detail))
    return body


def json_error(status_code: int, message: str, code: str = "error") -> JsonResponse:
    """The same error shape outside DRF views (e.g. the hosted page's JSON endpoints)."""
    return JsonResponse({"error": {"status": status_code, "code": code, "message": message}}, status=status_code)


def _bad_request(exc: SuspiciousOperation) -> BadRequest:
    # Logged where Django logs what it refuses itself, so the operator's security log still sees it.
    logging.getLogger(f"django.security.{type(exc).__name__}").warning(str(exc))
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return BadRequest(f"The request body is over the limit of {limit} bytes.", "request_too_large")
    return BadRequest(f"Bad request: {exc}")


def _code(exc: Exception, status_code: int) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid_request"
    codes = getattr(exc, "get_codes", None)
    code = codes() if codes else None
    if isinstance(code, str):
        return code
    return "not_found" if status_code == status.HTTP_404_NOT_FOUND else "error"


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{key}: {' '.join(_messages(v))}" for key, v in value.items()]
    if isinstance(value, list | tuple):
        return [m for item in value for m in _messages(item)]
    return [str(value)]
