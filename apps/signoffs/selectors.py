from apps.orgs.access import Access
from apps.signoffs.models import FollowUp, SignoffDecision


def decision_list(*, access: Access, org_id: int | None = None, project_id: int | None = None):
    qs = SignoffDecision.objects.visible_to(access).select_related("project", "project__organization", "decided_by")
    if org_id is not None:
        qs = qs.in_org(org_id)
    return qs.filter(project_id=project_id) if project_id is not None else qs


def follow_up_list(*, access: Access, org_id: int | None = None, project_id: int | None = None):
    qs = FollowUp.objects.visible_to(access).select_related("project", "project__organization", "decision")
    if org_id is not None:
        qs = qs.in_org(org_id)
    return qs.filter(project_id=project_id) if project_id is not None else qs
