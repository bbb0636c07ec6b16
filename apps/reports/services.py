"""Reports: generate an immutable snapshot on demand, from the API or after a scheduled probe."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.core.errors import ApplicationError
from apps.core.services import audit_record, require_writer
from apps.orgs.access import Access
from apps.reports.evaluation import refresh_project
from apps.reports.models import Report, Trigger
from apps.reports.snapshot import build_snapshot, changes_between


def report_create(*, access: Access, project, trigger: str = Trigger.MANUAL) -> Report:
    """Snapshot the project's readiness now (writers; `Access.system()` is the scheduler)."""
    require_writer(access, project.organization_id)
    refresh_project(project)  # automatic items and staleness are current before the snapshot
    for _ in range(3):  # two reports created at once race for the number: retry on the unique constraint
        try:
            with transaction.atomic():
                return _create(access, project, trigger)
        except IntegrityError:
            continue
    raise ApplicationError("Could not number the report; try again.", code="conflict", status=409)


def _create(access, project, trigger) -> Report:
    previous = Report.objects.filter(project=project).order_by("-number").first()
    snapshot = build_snapshot(project)
    snapshot["changes"] = changes_between(previous.snapshot if previous else None, snapshot)
    number = (Report.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    report = Report.objects.create(
        organization_id=project.organization_id,
        project=project,
        number=number,
        previous=previous,
        created_by=access.user,
        created_label="scheduler" if access.is_system else access.label,
        trigger=trigger,
        outcome=snapshot["decision"]["outcome"],
        fingerprint=snapshot["fingerprint"],
        snapshot=snapshot,
    )
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="report.create",
        obj=report,
        changes={"outcome": [None, report.outcome], "trigger": [None, trigger]},
    )
    return report
