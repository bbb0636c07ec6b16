from django.utils import timezone

from apps.orgs.access import Access
from apps.reports.models import ProjectStatus, Report


def report_list(*, access: Access, org_id: int | None = None, project_id: int | None = None):
    qs = Report.objects.visible_to(access).select_related("project", "organization")
    if org_id is not None:
        qs = qs.in_org(org_id)
    return qs.filter(project_id=project_id) if project_id is not None else qs


def status_list(*, access: Access, org_id: int | None = None):
    qs = ProjectStatus.objects.visible_to(access).select_related("project")
    return qs.in_org(org_id) if org_id is not None else qs


def project_status(project) -> ProjectStatus | None:
    """The stored decision, as the last evaluation left it; None before the first one. Reading it
    writes nothing: evaluation runs after each change and on the clock (`READINESS_REFRESH_INTERVAL_S`)."""
    return ProjectStatus.objects.filter(project=project).first()


def recent_outcomes(*, access: Access, org_id: int, last: int = 6) -> dict[int, list[str]]:
    """project id -> the decisions of its last `last` reports, oldest first (the dashboard trend)."""
    out: dict[int, list[str]] = {}
    rows = (
        report_list(access=access, org_id=org_id).order_by("project_id", "-number").values_list("project_id", "outcome")
    )
    for project_id, outcome in rows.iterator():
        trend = out.setdefault(project_id, [])
        if len(trend) < last:
            trend.insert(0, outcome)
    return out


def decided_before_today(status: ProjectStatus | None, now=None) -> bool:
    """Whether the stored decision was made on an earlier (UTC) day. Waivers expire and probes age
    by the date, so such a decision may be out of date until beat's midnight re-evaluation has run:
    the page and the API say it is being re-evaluated rather than present it as current."""
    if status is None:
        return False
    return timezone.localdate(status.evaluated_at) < timezone.localdate(now or timezone.now())
