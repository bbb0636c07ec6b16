"""Who is asking, and what they may do in which organization.

Built once per request from the session user's memberships or from the API token, then
passed to every selector and service. A token acts like a member of its one organization:
role "member" for a read-write token, "viewer" for a read token, never admin.

The scheduler and the workers act as `Access.system()`, said out loud at each call: services
refuse `None`, so a forgotten argument can never grant a write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from apps.orgs.models import ADMIN_ROLES, WRITER_ROLES, ApiToken, Membership, Role, TokenScope


@dataclass(frozen=True)
class Access:
    user: object | None = None
    token: ApiToken | None = None
    roles: Mapping[int, str] = field(default_factory=dict)  # org_id -> role
    is_system: bool = False

    @classmethod
    def system(cls) -> Access:
        """readiness itself (a scheduled run, a re-run, a scheduled report): writes in any
        organization, is no person (so never attests, signs or decides a waiver) and lists nothing."""
        return cls(is_system=True)

    @classmethod
    def for_user(cls, user) -> Access:
        if user is None or not user.is_authenticated:
            return cls()
        roles = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
        return cls(user=user, roles=roles)

    @classmethod
    def for_token(cls, token: ApiToken) -> Access:
        role = Role.MEMBER if token.scope == TokenScope.READ_WRITE else Role.VIEWER
        if token.acts_for_id is None:
            return cls(user=None, token=token, roles={token.organization_id: role})
        # A personal token is its member, never more: the lower of their role and the token's scope.
        member_role = (
            Membership.objects.filter(organization_id=token.organization_id, user_id=token.acts_for_id)
            .values_list("role", flat=True)
            .first()
        )
        if member_role is None:
            return cls(user=token.acts_for, token=token, roles={})
        if role == Role.VIEWER or member_role == Role.VIEWER:
            member_role = Role.VIEWER
        elif member_role in (Role.OWNER, Role.ADMIN):
            member_role = Role.MEMBER  # tokens never administer
        return cls(user=token.acts_for, token=token, roles={token.organization_id: member_role})

    @property
    def readable_org_ids(self) -> frozenset[int]:
        return frozenset(self.roles)

    def can_read(self, org_id: int) -> bool:
        return self.is_system or org_id in self.roles

    def can_write(self, org_id: int) -> bool:
        return self.is_system or self.roles.get(org_id) in WRITER_ROLES

    def can_admin(self, org_id: int) -> bool:
        # Managing people and tokens needs a person, never a token.
        return self.is_system or (self.token is None and self.roles.get(org_id) in ADMIN_ROLES)

    @property
    def label(self) -> str:
        if self.is_system:
            return "system"
        if self.token is not None and self.user is not None:
            return f"{self.user.username} (token:{self.token.name})"
        if self.token is not None:
            return f"token:{self.token.name}"
        return getattr(self.user, "username", "anonymous")

    @property
    def principal(self) -> str:
        if self.is_system:
            return "system"
        if self.token is not None:
            return f"token:{self.token.lookup_id}"
        return f"user:{getattr(self.user, 'pk', None)}"


def request_access(request) -> Access:
    """The Access for a Django or DRF request, cached on the request."""
    cached = getattr(request, "_readiness_access", None)
    if cached is not None:
        return cached
    token = getattr(request, "auth", None)
    access = Access.for_token(token) if isinstance(token, ApiToken) else Access.for_user(request.user)
    request._readiness_access = access
    return access
