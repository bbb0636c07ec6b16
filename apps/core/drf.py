"""DRF plumbing shared by every app: pagination, the one error shape, strict input, CSV."""

import csv
import io

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _error(code: str, message: str, detail, http_status: int, headers=None) -> Response:
    return Response(
        {"error": {"code": code, "message": message, "detail": detail}},
        status=http_status,
        headers=headers,
    )


def exception_handler(exc, context):
    """Every API error becomes {"error": {"code", "message", "detail"}}."""
    if isinstance(exc, ApplicationError):
        return _error(exc.code, exc.message, exc.detail, exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return _error("invalid", "The request has invalid fields.", detail, response.status_code)
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = status.HTTP_401_UNAUTHORIZED
    message = str(exc.detail) if hasattr(exc, "detail") else str(exc)
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("www-authenticate", "retry-after")}
    return _error(code, message, {}, response.status_code, headers)


class StrictFieldsMixin:
    """Reject fields the serializer does not know, instead of silently dropping them."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            unknown = sorted(set(data.keys()) - writable)
            if unknown:
                raise exceptions.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class CSVRenderer(BaseRenderer):
    """What makes `?format=csv` (or `Accept: text/csv`) reach an action that offers it.

    DRF reads the `format` query parameter itself and answers 404 for a format no renderer
    is called, before the action runs. Actions stream their CSV themselves (a run's records do
    not fit one response body); a list of flat dicts that reaches this renderer is written as CSV.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        rows = data if isinstance(data, list) else []
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue().encode(self.charset)


class CSVErrorsAsJSONMixin:
    """An error is the one JSON error shape even where CSV was asked for: a client reading the
    CSV must not take an error for rows, and the error shape has no CSV form."""

    def finalize_response(self, request, response, *args, **kwargs):
        renderer = getattr(request, "accepted_renderer", None)
        if isinstance(response, Response) and response.exception and isinstance(renderer, CSVRenderer):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
