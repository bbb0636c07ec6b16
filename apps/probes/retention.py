"""Retention of probe runs' raw per-request records.

A run keeps its summary, timeline, verdict and server metrics for good (they are the evidence the
decision, the reports and the comparisons read); only the record batches, by far the largest rows,
go once the run finished long enough ago. The requests CSV and the records API have nothing to
show for such a run, and the run page says why.
"""

from datetime import datetime

from apps.core.retention import BATCH_SIZE, cutoff, delete_in_batches
from apps.probes.models import ACTIVE_STATUSES, ProbeRecordBatch, ProbeRun


def probe_records_prune(*, days: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Delete the record batches of runs that finished more than `days` days ago (0: never).
    An active run is never touched: its summary is computed from its batches when it finishes."""
    before = cutoff(days, now)
    if before is None:
        return 0
    old = ProbeRecordBatch.objects.filter(shard__run__finished_at__lt=before).exclude(
        shard__run__status__in=ACTIVE_STATUSES
    )
    return delete_in_batches(old, batch_size=batch_size)[ProbeRecordBatch._meta.label]


def run_records_pruned(run: ProbeRun) -> bool:
    """True when a finished run counted requests but holds none of their records any more. Its
    request count comes from those records when it finishes, so only pruning empties it after."""
    if run.is_active or not run.request_count:
        return False
    return not ProbeRecordBatch.objects.filter(shard__run=run).exists()
