"""The organization's readiness policy: which checklist categories every project needs.

A project that lacks one of them is NO-GO (apps/reports/decision.py), so an admin sets the
policy, every change is audited, and every project of the organization is re-decided.
"""

from __future__ import annotations

from django.db import transaction

from apps.checklists import defaults
from apps.checklists.models import ChecklistTemplate
from apps.core.errors import ApplicationError
from apps.core.readiness import readiness_changed
from apps.core.services import audit_record
from apps.orgs.access import Access
from apps.orgs.models import Organization

# Far more than any organization has categories; anything longer is not a policy.
MAX_REQUIRED_CATEGORIES = 100
UNKNOWN_NAMED = 10


def known_categories(organization: Organization) -> list[str]:
    """The shipped categories and those of the organization's own templates, sorted."""
    own = ChecklistTemplate.objects.filter(organization=organization).values_list("category", flat=True)
    return sorted(set(defaults.TEMPLATES) | set(own))


def required_categories_checked(organization: Organization, categories) -> list[str]:
    """The categories, each once, in the order given; errors name the unknown ones."""
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ApplicationError(
            "Give a list of category names.", detail={"required_checklist_categories": ["A list of category names."]}
        )
    if len(categories) > MAX_REQUIRED_CATEGORIES:
        message = f"Give at most {MAX_REQUIRED_CATEGORIES} category names."
        raise ApplicationError(message, detail={"required_checklist_categories": [message]})
    known = known_categories(organization)
    unknown = list(dict.fromkeys(c for c in categories if c not in known))
    if unknown:
        # Name a few: a refusal must not echo back whatever mass of names it was sent.
        named = ", ".join(unknown[:UNKNOWN_NAMED]) + (
            f" and {len(unknown) - UNKNOWN_NAMED} more" if len(unknown) > UNKNOWN_NAMED else ""
        )
        message = f"Unknown categor{'y' if len(unknown) == 1 else 'ies'}: {named}. Known: {', '.join(known)}."
        raise ApplicationError(message, detail={"required_checklist_categories": [message]})
    return list(dict.fromkeys(categories))


@transaction.atomic
def organization_policy_update(
    *, access: Access, organization: Organization, required_checklist_categories
) -> Organization:
    """Set the categories every project needs (owners and admins only) and re-decide the projects."""
    if not access.can_read(organization.pk):
        raise ApplicationError("Not found.", code="not_found", status=404)
    if not access.can_admin(organization.pk):
        raise ApplicationError("Only owners and admins can change the readiness policy.", code="forbidden", status=403)
    clean = required_categories_checked(organization, required_checklist_categories)
    before = list(organization.required_checklist_categories or [])
    if clean == before:
        return organization
    organization.required_checklist_categories = clean
    organization.save(update_fields=["required_checklist_categories", "updated_at"])
    audit_record(
        access=access,
        organization_id=organization.pk,
        action="organization.policy",
        obj=organization,
        changes={"required_checklist_categories": [before, clean]},
    )
    for project in organization.projects.all():
        readiness_changed(project)
    return organization
