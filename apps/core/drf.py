"""DRF plumbing shared by every app: pagination, the one error shape, strict input, id filters, CSV."""

import csv
import io

import django_filters
from django import forms
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import models
from django.db.models.fields.related import ManyToManyRel, ManyToOneRel, OneToOneRel
from django.http import Http404, JsonResponse
from django.views import defaults
from django_filters.filters import QuerySetRequestMixin
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.rest_framework import FilterSet as RestFilterSet
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError

# Primary keys are BigAutoField. A larger number is nobody's id, and SQLite and PostgreSQL raise
# an overflow (a 500) when one reaches a query, so it is refused where it is read.
MAX_ID = 2**63 - 1


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


def api_page_not_found(request, exception):
    """`handler404`: a URL under /api/ that matches no route (`/api/v1/endpoints/abc/compatibility/`)
    answers the API's error shape; every other path gets the HTML page."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": "Not found.", "detail": {}}}
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


def parse_id(value, name: str) -> int:
    """An object id from a body or query value, or a 400 naming the field (never a 500 from the query)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise exceptions.ValidationError({name: ["An object id: a whole number."]})
    return value


# --- filters -------------------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An object id, checked as a number only: a whole number a row could have.

    Never a choice over a queryset. The browsable API renders such a choice as a list of every
    row, other tenants' included, and a foreign id would pass where a missing one fails (an oracle
    for which ids exist). A number simply matches nothing in the caller's scoped queryset."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def get_max_validator(self):
        return None  # max_value above bounds it already


_ID = {"filter_class": IdFilter}


class FilterSet(RestFilterSet):
    """The base of every API filter set: relations filter by id (IdFilter), never by a choice."""

    FILTER_DEFAULTS = {
        **RestFilterSet.FILTER_DEFAULTS,
        models.ForeignKey: _ID,
        models.OneToOneField: _ID,
        models.ManyToManyField: _ID,
        OneToOneRel: _ID,
        ManyToOneRel: _ID,
        ManyToManyRel: _ID,
    }


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose `filterset_fields` build on FilterSet above, and which refuses a
    filter set that would validate a value against a queryset (see IdFilter for why)."""

    filterset_base = FilterSet

    def get_filterset_class(self, view, queryset=None):
        filterset_class = super().get_filterset_class(view, queryset)
        if filterset_class is not None:
            for name, f in filterset_class.base_filters.items():
                if isinstance(f, QuerySetRequestMixin):
                    raise ImproperlyConfigured(
                        f"{view.__class__.__name__} filter {name!r} is a choice over a queryset; "
                        "use apps.core.drf.FilterSet (relations become IdFilter)."
                    )
        return filterset_class


# --- input and output ----------------------------------------------------------------------------


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
