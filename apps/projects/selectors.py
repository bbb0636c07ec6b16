from django.db.models import Count

from apps.orgs.access import Access
from apps.projects.models import Endpoint, Project


def project_list(*, access: Access, org_id: int | None = None):
    qs = (
        Project.objects.visible_to(access)
        .select_related("organization", "owner")
        .annotate(endpoint_count=Count("endpoints"))
        .order_by("name", "pk")  # Meta.ordering is dropped from GROUP BY queries
    )
    return qs.in_org(org_id) if org_id is not None else qs


def endpoint_list(*, access: Access, org_id: int | None = None, project_id: int | None = None):
    qs = Endpoint.objects.visible_to(access).select_related("project", "project__organization")
    if org_id is not None:
        qs = qs.in_org(org_id)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    return qs
