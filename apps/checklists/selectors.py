from apps.checklists.models import Checklist, ChecklistTemplate, ItemResponse, Waiver
from apps.orgs.access import Access


def template_list(*, access: Access, org_id: int | None = None):
    qs = ChecklistTemplate.objects.visible_to(access).select_related("organization")
    return qs.in_org(org_id) if org_id is not None else qs


def checklist_list(*, access: Access, org_id: int | None = None, project_id: int | None = None):
    qs = Checklist.objects.visible_to(access).select_related("project", "project__organization", "template")
    if org_id is not None:
        qs = qs.in_org(org_id)
    return qs.filter(project_id=project_id) if project_id is not None else qs


def response_list(*, access: Access, org_id: int | None = None):
    qs = ItemResponse.objects.visible_to(access).select_related(
        "item", "checklist", "checklist__project", "checklist__project__organization", "answered_by"
    )
    return qs.in_org(org_id) if org_id is not None else qs


def waiver_list(*, access: Access, org_id: int | None = None):
    qs = Waiver.objects.visible_to(access).select_related(
        "response__item", "response__checklist__project__organization", "requested_by", "decided_by", "revoked_by"
    )
    return qs.in_org(org_id) if org_id is not None else qs
