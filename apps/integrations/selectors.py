from apps.integrations.models import Connector, Delivery
from apps.orgs.access import Access


def connector_list(*, access: Access, org_id: int | None = None):
    qs = Connector.objects.visible_to(access).select_related("organization", "project")
    return qs.in_org(org_id) if org_id is not None else qs


def delivery_list(*, access: Access, org_id: int | None = None, connector_id: int | None = None):
    qs = (
        Delivery.objects.visible_to(access)
        .select_related("connector", "connector__organization", "project")
        .prefetch_related("history")  # each delivery's attempts, in the API's listing
    )
    if org_id is not None:
        qs = qs.in_org(org_id)
    return qs.filter(connector_id=connector_id) if connector_id is not None else qs
