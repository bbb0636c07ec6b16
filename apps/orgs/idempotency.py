"""`Idempotency-Key` on API POSTs: a retried call returns the first answer, not a duplicate."""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from apps.core.errors import ApplicationError
from apps.core.models import IdempotencyRecord
from apps.orgs.access import request_access

HEADER = "Idempotency-Key"
IN_FLIGHT_TIMEOUT = timedelta(minutes=5)


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _scope(access) -> str:
    """Whose keys these are: an API token's organization (every token of an org shares its keys, as
    one integration often holds several), or the person."""
    if access.token is not None and access.token.acts_for_id is None:
        return f"org:{access.token.organization_id}"
    return access.principal


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise ApplicationError(
            f"This {HEADER} was already used with a different request.", code="idempotency_conflict", status=422
        )
    if record.status_code == 0:
        raise ApplicationError(
            f"A request with this {HEADER} is still in progress; retry shortly.",
            code="idempotency_in_flight",
            status=409,
        )
    return Response(record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(request, produce: Callable[[], Response]) -> Response:
    """Run `produce` once per (scope, Idempotency-Key), following the IETF Idempotency-Key draft:
    the same key and body replay the first response, the same key with another body is 422, and
    a key whose first request is still running is 409."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return produce()
    if len(key) > 200:
        raise ApplicationError(f"{HEADER} must be at most 200 characters.")
    scope = _scope(request_access(request))
    fingerprint = _fingerprint(request)
    # The key is claimed in its own committed transaction before the work, so a concurrent duplicate
    # sees it in flight. A claim older than IN_FLIGHT_TIMEOUT was abandoned (a crash) and is taken over.
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                principal=scope, key=key, request_fingerprint=fingerprint, status_code=0, response_body={}
            )
    except IntegrityError:
        record = IdempotencyRecord.objects.get(principal=scope, key=key)
        abandoned = record.status_code == 0 and record.created_at < timezone.now() - IN_FLIGHT_TIMEOUT
        if not (abandoned and record.request_fingerprint == fingerprint):
            return _replay(record, fingerprint)
        taken = IdempotencyRecord.objects.filter(pk=record.pk, status_code=0, created_at=record.created_at)
        if not taken.update(created_at=timezone.now()):
            return _replay(IdempotencyRecord.objects.get(pk=record.pk), fingerprint)
    try:
        response = produce()
    except BaseException:
        record.delete()  # the request failed: the same key may be retried
        raise
    if 200 <= response.status_code < 300:
        record.status_code = response.status_code
        record.response_body = json.loads(json.dumps(response.data, default=str))
        record.save(update_fields=["status_code", "response_body"])
    else:
        record.delete()
    return response


class IdempotentCreateMixin:
    """For ModelViewSets: `create` honours Idempotency-Key (same key + same body → same response)."""

    def create(self, request, *args, **kwargs):
        return idempotent(request, lambda: super(IdempotentCreateMixin, self).create(request, *args, **kwargs))
