from django.db.models import Prefetch

from apps.orgs.access import Access
from apps.probes.engine.records import Records
from apps.probes.models import ProbePlan, ProbeRecordBatch, ProbeRun, ProbeShard


def plan_list(*, access: Access, org_id: int | None = None, endpoint_id: int | None = None):
    qs = ProbePlan.objects.visible_to(access).select_related("endpoint", "endpoint__project")
    if org_id is not None:
        qs = qs.in_org(org_id)
    if endpoint_id is not None:
        qs = qs.filter(endpoint_id=endpoint_id)
    return qs


def run_list(*, access: Access, org_id: int | None = None, plan_id: int | None = None):
    qs = ProbeRun.objects.visible_to(access).select_related("plan", "plan__endpoint", "plan__endpoint__project")
    qs = qs.defer("server_metrics")
    if org_id is not None:
        qs = qs.in_org(org_id)
    if plan_id is not None:
        qs = qs.filter(plan_id=plan_id)
    return qs


def run_with_shards(qs):
    return qs.prefetch_related(Prefetch("shards", queryset=ProbeShard.objects.order_by("index")))


def run_records(run: ProbeRun) -> Records:
    """All records of a run: every shard's batches, merged exactly.

    Shards split one arrival schedule, and each shard's times count from its own start, so
    they share the schedule's time axis even when a worker picked its shard up late (that
    skew is reported in the summary, not folded into the latencies).
    """
    merged = Records()
    for batch in ProbeRecordBatch.objects.filter(shard__run=run).order_by("shard__index", "sequence").iterator():
        merged.extend(Records.from_bytes(bytes(batch.data)))
    return merged


def previous_run(run: ProbeRun):
    return (
        ProbeRun.objects.filter(plan_id=run.plan_id, status="succeeded", created_at__lt=run.created_at)
        .order_by("-created_at")
        .first()
    )
