"""`Idempotency-Key` on API POSTs: a retried call returns the first answer, not a duplicate."""

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from rest_framework.response import Response

from apps.core.errors import ApplicationError
from apps.core.models import IdempotencyRecord
from apps.orgs.access import request_access

HEADER = "Idempotency-Key"


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise ApplicationError(
            f"This {HEADER} was already used with a different request.", code="idempotency_conflict", status=422
        )
    return Response(record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(request, produce: Callable[[], Response]) -> Response:
    """Run `produce` once per (principal, Idempotency-Key); replay its response afterwards."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return produce()
    if len(key) > 200:
        raise ApplicationError(f"{HEADER} must be at most 200 characters.")
    principal = request_access(request).principal
    fingerprint = _fingerprint(request)
    # The key row is inserted before the work, in the same transaction: a concurrent
    # duplicate blocks on the unique index and then replays instead of acting twice.
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    principal=principal, key=key, request_fingerprint=fingerprint, status_code=0, response_body={}
                )
        except IntegrityError:
            return _replay(IdempotencyRecord.objects.get(principal=principal, key=key), fingerprint)
        response = produce()
        if 200 <= response.status_code < 300:
            record.status_code = response.status_code
            record.response_body = json.loads(json.dumps(response.data, default=str))
            record.save(update_fields=["status_code", "response_body"])
        else:
            transaction.set_rollback(True)  # a failed request may be retried with the same key
        return response


class IdempotentCreateMixin:
    """For ModelViewSets: `create` honours Idempotency-Key (same key + same body → same response)."""

    def create(self, request, *args, **kwargs):
        return idempotent(request, lambda: super(IdempotentCreateMixin, self).create(request, *args, **kwargs))
