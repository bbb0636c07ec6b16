from apps.integrations.models import Connector, Delivery, TicketLink
from apps.orgs.access import Access
from apps.reports.findings import open_findings


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


def project_tickets(*, access: Access, project):
    return TicketLink.objects.visible_to(access).filter(project=project).select_related("connector")


def findings_with_tickets(project, *, access: Access, base_url: str = "") -> list[dict]:
    """The project's open findings (reports), each with the tickets that track it here."""
    tickets: dict[str, list[dict]] = {}
    for t in project_tickets(access=access, project=project):
        tickets.setdefault(t.finding_key, []).append(
            {"connector": t.connector.name, "key": t.external_key, "url": t.url, "state": t.state}
        )
    findings = open_findings(project, base_url=base_url)
    for finding in findings:
        finding["tickets"] = tickets.get(finding["key"], [])
    return findings
