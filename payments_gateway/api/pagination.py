"""The one pagination of the API's lists: ``?limit=`` (1 to 500, default 50) and ``?offset=`` (0 or more), answered
as ``{"count", "next", "previous", "results"}``. A value that is not such an integer is a 400 naming it (DRF's own
class would quietly use the default), so the schema's limits are the API's."""

from __future__ import annotations

from rest_framework import exceptions, pagination

MAX_LIMIT = 500


class Pagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_LIMIT

    def get_limit(self, request):
        return _integer(request, self.limit_query_param, self.default_limit, minimum=1, maximum=MAX_LIMIT)

    def get_offset(self, request):
        return _integer(request, self.offset_query_param, 0, minimum=0, maximum=None)

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["schema"] |= {"minimum": 1, "maximum": MAX_LIMIT, "default": self.default_limit}
        offset["schema"] |= {"minimum": 0, "default": 0}
        return [limit, offset]


def _integer(request, name: str, default: int, *, minimum: int, maximum: int | None) -> int:
    values = request.query_params.getlist(name)
    if not values:
        return default
    text = values[-1]
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of {minimum} or more"
    if (
        len(values) > 1
        or not text.isascii()
        or not text.isdigit()
        or not (minimum <= int(text) <= (maximum if maximum is not None else int(text)))
    ):
        raise exceptions.ValidationError({name: [f"give one whole number {bounds} (got {', '.join(values)!r})."]})
    return int(text)
