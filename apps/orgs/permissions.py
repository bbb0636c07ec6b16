from rest_framework import exceptions, permissions

from apps.core.tenancy import org_id_of
from apps.orgs.access import request_access


class OrgAccessPermission(permissions.BasePermission):
    """Authenticated principals only; writes need a writer role in the object's organization.

    Reads are not checked here: querysets come from `visible_to(access)`, so an object of
    another organization never reaches this point (404).
    """

    def has_permission(self, request, view):
        access = request_access(request)
        if not access.roles and access.user is None and access.token is None:
            raise exceptions.NotAuthenticated()
        if request.method in permissions.SAFE_METHODS:
            return True
        if access.token is not None and not any(access.can_write(o) for o in access.roles):
            raise exceptions.PermissionDenied("This API token is read-only.")
        return any(access.can_write(o) for o in access.roles)

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        return request_access(request).can_write(org_id_of(obj))
