"""What the integrations app adds to other apps' pages (apps/core/panels.py)."""

from apps.core.panels import Panel
from apps.integrations.selectors import project_tickets
from apps.orgs.access import Access


def readiness_tickets_panel(sender, *, project, access: Access, **kwargs) -> Panel | None:
    """The readiness page's "Tickets" section (apps/core/panels.py), when any ticket tracks a finding."""
    tickets = list(project_tickets(access=access, project=project))
    return Panel("integrations/readiness_tickets.html", {"tickets": tickets}) if tickets else None
