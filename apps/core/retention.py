"""Retention: rows kept only for a while are deleted once old, a bounded batch per statement.

Each app prunes what it owns (apps/probes/retention.py, apps/integrations/retention.py); the daily
`prune` task and command in apps/integrations call them all, since only the most downstream app
may import the others.
"""

from collections import Counter
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from apps.core.models import IdempotencyRecord

# Rows per DELETE: one statement holds its locks only this long, however big the backlog (the
# first prune of a table that grew for years), and a worker stopped mid-way keeps what it did.
BATCH_SIZE = 1000


def cutoff(days: int, now: datetime | None = None) -> datetime | None:
    """The moment before which rows kept `days` days are old; None for 0, which keeps them for ever."""
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def delete_in_batches(queryset: QuerySet, *, batch_size: int = BATCH_SIZE) -> Counter:
    """Delete what `queryset` matches, `batch_size` rows at a time, each batch in its own statement
    (and transaction, outside an atomic block). Returns rows deleted per model label, cascades included.

    Each batch's DELETE filters on the queryset's conditions again, not on the picked keys alone: a
    row that changed in between (a delivery sent again) no longer matches and stays.
    """
    deleted: Counter = Counter()
    # By primary key, oldest first: the default ordering (often newest first) would make every
    # batch walk past all the young rows before it reaches an old one.
    pks = queryset.order_by("pk").values_list("pk", flat=True)
    while batch := list(pks[:batch_size]):
        # only("pk"): a model with cascades is fetched before its delete; its payload need not be.
        _, per_model = queryset.filter(pk__in=batch).order_by().only("pk").delete()
        deleted.update(per_model)
        if len(batch) < batch_size:
            break
    return deleted


def idempotency_records_prune(*, days: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Forget Idempotency-Keys first used more than `days` days ago (0: never): a retry with such
    a key is a new request. A key still in flight is minutes old (apps/orgs/idempotency.py), so a
    whole day is the shortest retention there is."""
    before = cutoff(days, now)
    if before is None:
        return 0
    old = IdempotencyRecord.objects.filter(created_at__lt=before)
    return delete_in_batches(old, batch_size=batch_size)[IdempotencyRecord._meta.label]
