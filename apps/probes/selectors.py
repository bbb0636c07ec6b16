from django.db.models import OuterRef, Prefetch, Subquery

from apps.orgs.access import Access
from apps.probes.engine.records import Records
from apps.probes.engine.report import request_rows
from apps.probes.models import ACTIVE_STATUSES, ProbePlan, ProbeRecordBatch, ProbeRun, ProbeShard, RunStatus
from apps.projects.selectors import endpoint_list


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
    return merged(records_by_shard(run).values())


def records_by_shard(run: ProbeRun) -> dict[int, Records]:
    """Each shard's records (by shard index): a noisy-neighbour run's shard is one tenant."""
    parts: dict[int, Records] = {}
    batches = ProbeRecordBatch.objects.filter(shard__run=run).order_by("shard__index", "sequence")
    for index, data in batches.values_list("shard__index", "data").iterator():
        parts.setdefault(index, Records()).extend(Records.from_bytes(bytes(data)))
    return parts


def merged(parts) -> Records:
    out = Records()
    for part in parts:
        out.extend(part)
    return out


class RecordRows:
    """A run's request rows (`request_rows` of `run_records`), in the same order, read a slice at a time.

    A page of the records API shows a few rows of a run that may hold millions, so instead of
    decoding every batch this reads each batch's `count` (a small column, one query) and then
    fetches and decodes only the batches that hold the slice. The order is the stored order,
    shard by shard, batch by batch, rows as their shard recorded them: the order the API has
    always paged in. It is not sorted by send time; a whole-run sort would need every batch for
    every page again.

    `batches_read` and `bytes_read` say what the slices so far have decoded.
    """

    def __init__(self, run: ProbeRun):
        batches = ProbeRecordBatch.objects.filter(shard__run=run).order_by("shard__index", "sequence")
        # A batch without rows (a flush of inter-token latencies only) holds nothing a page shows.
        self._spans = [(pk, count) for pk, count in batches.values_list("pk", "count") if count]
        self._total = sum(count for _, count in self._spans)
        self.batches_read = 0
        self.bytes_read = 0

    def __len__(self) -> int:
        return self._total

    def __getitem__(self, key: slice) -> list[dict]:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("record rows are read in contiguous slices")
        start, stop, _ = key.indices(self._total)
        wanted, first = [], 0  # (batch pk, index of its first row in the run)
        for pk, count in self._spans:
            if first >= stop:
                break
            if first + count > start:
                wanted.append((pk, first))
            first += count
        if not wanted:
            return []
        data = ProbeRecordBatch.objects.filter(pk__in=[pk for pk, _ in wanted]).order_by().values_list("pk", "data")
        blobs = dict(data)
        rows: list[dict] = []
        for pk, first in wanted:
            blob = bytes(blobs[pk])
            self.batches_read += 1
            self.bytes_read += len(blob)
            records = Records.from_bytes(blob)
            rows.extend(request_rows(records.since(max(start - first, 0), min(stop - first, len(records)))))
        return rows


def run_record_rows(run: ProbeRun) -> RecordRows:
    """The rows of `run_records(run)` as a sliceable sequence that decodes only what a slice needs."""
    return RecordRows(run)


def previous_run(run: ProbeRun):
    return (
        ProbeRun.objects.succeeded()
        .filter(plan_id=run.plan_id, created_at__lt=run.created_at)
        .order_by("-created_at")
        .first()
    )


def latest_sweep_capacity(endpoint_id: int) -> tuple[float, ProbeRun] | None:
    """The highest SLO-meeting rate of the endpoint's latest successful sweep that found one: the
    capacity an autoscaling probe's step is a multiple of."""
    runs = ProbeRun.objects.succeeded().filter(plan__endpoint_id=endpoint_id, summary__has_key="sweep")
    for run in runs.order_by("-finished_at")[:20].only("pk", "summary", "finished_at"):
        rate = (run.summary.get("sweep") or {}).get("max_rate_meeting_slo")
        if rate:
            return float(rate), run
    return None


HEADLINES = (
    ("requests", ("overall", "requests"), ""),
    ("request throughput (req/s)", ("overall", "request_throughput"), "up"),
    ("output tokens/s", ("overall", "output_token_throughput"), "up"),
    ("goodput (req/s)", ("overall", "goodput"), "up"),
    ("error rate", ("overall", "error_rate"), "down"),
    ("TTFT p50 (ms)", ("overall", "ttft_ms", "p50"), "down"),
    ("TTFT p95 (ms)", ("overall", "ttft_ms", "p95"), "down"),
    ("TPOT p95 (ms)", ("overall", "tpot_ms", "p95"), "down"),
    ("ITL p95 (ms)", ("overall", "itl_ms", "p95"), "down"),
    ("E2E p99 (ms)", ("overall", "e2e_ms", "p99"), "down"),
    ("SLO attainment", ("overall", "slo_attainment"), "up"),
)


def _dig(summary: dict | None, path: tuple):
    value = summary or {}
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def run_comparison(a: ProbeRun, b: ProbeRun, *, threshold_pct: float | None = None) -> list[dict]:
    """Headline figures of two runs side by side, with the change from a to b; for two
    noisy-neighbour runs, each tenant's figures and the fairness index too.

    A change is judged better or worse only beyond the plan's regression threshold (by default b's
    plan's), the same bar a scheduled run's regression check uses: within it, a run-to-run wobble
    of a few percent is noise, and `verdict` is None.
    """
    if threshold_pct is None:
        threshold_pct = b.plan.regression_threshold_pct
    rows = [
        _compared(label, _dig(a.summary, path), _dig(b.summary, path), better, threshold_pct)
        for label, path, better in HEADLINES
    ]
    before, after = _tenant_figures(a.summary), _tenant_figures(b.summary)
    for label, (y, better) in after.items():
        if label in before:
            rows.append(_compared(label, before[label][0], y, better, threshold_pct))
    return rows


def _compared(label: str, x, y, better: str, threshold_pct: float) -> dict:
    delta = pct = None
    if isinstance(x, int | float) and isinstance(y, int | float):
        delta = round(y - x, 4)
        pct = round((y - x) / x * 100, 1) if x else None
    # From zero, any change is beyond every threshold (there is no relative size to compare).
    beyond = bool(delta) and (pct is None or abs((y - x) / x * 100) > threshold_pct)
    verdict = None
    if beyond and better:
        verdict = "better" if (delta > 0) == (better == "up") else "worse"
    return {
        "figure": label,
        "a": x,
        "b": y,
        "delta": delta,
        "delta_pct": pct,
        "verdict": verdict,
        "beyond_threshold": beyond,
    }


def _tenant_figures(summary: dict | None) -> dict[str, tuple]:
    """A noisy-neighbour run's figures by label: {label: (value, better)}; empty for other runs."""
    analysis = (summary or {}).get("tenants") or {}
    figures = {"Jain's fairness index": (analysis.get("jain_index"), "up")} if analysis else {}
    for t in analysis.get("tenants") or ():
        figures[f"{t['name']}: TTFT p95 (ms)"] = ((t.get("ttft_ms") or {}).get("p95"), "down")
        figures[f"{t['name']}: error rate"] = (t.get("error_rate"), "down")
    for q in analysis.get("quiet") or ():
        figures[f"{q['name']}: TTFT p95 during the burst ÷ before"] = (q.get("ttft_ratio_during"), "down")
    return figures


def plan_finished_runs(*, access: Access, org_id: int, plan_id: int, last: int = 100):
    """The plan's finished runs, newest first, for picking two to compare (bounded: a scheduled plan
    gathers thousands)."""
    qs = run_list(access=access, org_id=org_id, plan_id=plan_id).exclude(status__in=ACTIVE_STATUSES)
    qs = qs.select_related(None).only("pk", "created_at", "status", "trigger", "plan_id")
    return qs.order_by("-created_at", "-id")[:last]


def plans_with_latest_run(*, access: Access, org_id: int, project_id: int):
    from django.db.models import OuterRef, Subquery

    latest = ProbeRun.objects.filter(plan=OuterRef("pk")).order_by("-created_at")
    return (
        plan_list(access=access, org_id=org_id)
        .filter(endpoint__project_id=project_id)
        .annotate(
            latest_run_id=Subquery(latest.values("pk")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
            latest_regressed=Subquery(latest.values("regression__regressed")[:1]),
        )
    )


def plan_trends(*, access: Access, org_id: int, plans: list, last: int = 10) -> dict[str, dict]:
    """Trend figures (headline numbers of the last runs) per plan, for the project page."""
    from apps.probes import charts

    figures = {}
    for plan in plans:
        runs = run_list(access=access, org_id=org_id, plan_id=plan.pk).succeeded()
        fig = charts.trend(
            list(reversed(runs.defer("timeline", "config", "server_metrics")[:last])),
            title=f"{plan.name}: trend over the last runs",
        )
        if fig:
            figures[f"trend-{plan.pk}"] = fig
    return figures


def endpoints_with_last_success(*, access: Access, org_id: int, project_id: int):
    """The project's endpoints, each with its last succeeded probe run (id and finish time), the
    project page's "last successful probe"; None where no run of any of its plans succeeded."""
    last = (
        ProbeRun.objects.filter(plan__endpoint=OuterRef("pk"), status=RunStatus.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .values("pk", "finished_at")
    )
    return endpoint_list(access=access, org_id=org_id, project_id=project_id).annotate(
        last_success_run_id=Subquery(last.values("pk")[:1]),
        last_success_at=Subquery(last.values("finished_at")[:1]),
    )


def latest_runs(project) -> list[ProbeRun]:
    """The latest successful run of each of the project's plans, newest first."""
    runs = (
        ProbeRun.objects.succeeded()
        .filter(plan__endpoint__project=project)
        .select_related("plan", "plan__endpoint")
        .defer("server_metrics", "timeline")
        .order_by("plan_id", "-finished_at", "-pk")
    )
    latest = {}
    for run in runs:
        latest.setdefault(run.plan_id, run)
    return sorted(latest.values(), key=lambda r: r.finished_at, reverse=True)
