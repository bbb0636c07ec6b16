from apps.orgs.access import request_access
from apps.orgs.invitations import invitations_for
from apps.orgs.mixins import CURRENT_ORG_SESSION_KEY
from apps.orgs.selectors import organization_list


def organizations(request):
    """The org switcher's entries and the count of open invitations, for every page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    orgs = list(organization_list(access=request_access(request)))
    # The organization last visited, among the user's own: pages outside an organization (error
    # pages, the password form) keep its navigation.
    slug = request.session.get(CURRENT_ORG_SESSION_KEY) if hasattr(request, "session") else None
    return {
        "user_orgs": orgs,
        "session_org": next((o for o in orgs if o.slug == slug), None),
        "invitation_count": invitations_for(user).count(),
    }
