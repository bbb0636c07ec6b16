from django.http import Http404

from apps.orgs.access import Access
from apps.orgs.models import ApiToken, Membership, Organization


def organization_list(*, access: Access):
    return Organization.objects.filter(pk__in=access.readable_org_ids).order_by("name")


def organization_get(*, access: Access, slug: str) -> Organization:
    """The organization named by `slug`, if the principal belongs to it; else 404."""
    org = Organization.objects.filter(slug=slug, pk__in=access.readable_org_ids).first()
    if org is None:
        raise Http404("No such organization.")
    return org


def membership_list(*, access: Access, org_id: int | None = None):
    qs = Membership.objects.visible_to(access).select_related("user", "organization")
    if org_id is not None:
        qs = qs.in_org(org_id)
    return qs


def api_token_list(*, access: Access, org_id: int):
    return ApiToken.objects.visible_to(access).in_org(org_id).select_related("created_by", "acts_for")
