from apps.orgs.access import request_access
from apps.orgs.invitations import invitations_for
from apps.orgs.selectors import organization_list


def organizations(request):
    """The org switcher's entries and the count of open invitations, for every page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "user_orgs": list(organization_list(access=request_access(request))),
        "invitation_count": invitations_for(user).count(),
    }
