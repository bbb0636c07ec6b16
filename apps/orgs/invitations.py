"""Invitations: the only way a person joins an organization someone else runs.

An admin invites a username with a role and functions; the person with that username sees the
invitation when they log in and accepts or declines it. The admin's answer is the same whether
or not such a user exists, so the form cannot be used to find out who has an account.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.services import audit_record
from apps.orgs.access import Access
from apps.orgs.models import Invitation, InvitationStatus, Membership, Organization, Role
from apps.orgs.services import _clean_functions, _require_admin

VALID_FOR = timedelta(days=14)


@transaction.atomic
def invitation_create(
    *, access: Access, org: Organization, username: str, role: str, functions: list[str]
) -> Invitation:
    """Invite `username` (admins; only an owner may offer the owner role). Never says whether
    the username exists."""
    _require_admin(access, org)
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise ApplicationError("Give the username to invite.", detail={"username": ["Required, at most 150."]})
    if role not in Role.values:
        raise ApplicationError("Unknown role.", detail={"role": [role]})
    if role == Role.OWNER and access.roles.get(org.pk) != Role.OWNER:
        raise ApplicationError("Only an owner can make another owner.", code="forbidden", status=403)
    if Membership.objects.filter(organization=org, user__username=username).exists():
        # Members are listed to admins anyway: saying so reveals nothing new.
        raise ApplicationError(
            f"{username} is already a member.", code="duplicate", detail={"username": ["Already a member."]}
        )
    Invitation.objects.filter(
        organization=org, username=username, status=InvitationStatus.PENDING, expires_at__lte=timezone.now()
    ).update(status=InvitationStatus.REVOKED)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organization=org,
                username=username,
                role=role,
                functions=_clean_functions(functions),
                invited_by=access.user,
                expires_at=timezone.now() + VALID_FOR,
            )
    except IntegrityError:
        raise ApplicationError(
            f"{username} already has a pending invitation.", code="duplicate", detail={"username": ["Already invited."]}
        ) from None
    audit_record(
        access=access,
        organization_id=org.pk,
        action="invitation.create",
        obj=invitation,
        changes={"username": [None, username], "role": [None, role], "functions": [None, invitation.functions]},
    )
    return invitation


def invitations_for(user):
    """The open invitations addressed to `user`'s username."""
    return (
        Invitation.objects.filter(
            username=user.username, status=InvitationStatus.PENDING, expires_at__gt=timezone.now()
        )
        .select_related("organization", "invited_by")
        .order_by("-created_at")
    )


def _open_for(user, invitation_id: int) -> Invitation:
    invitation = invitations_for(user).select_for_update(of=("self",)).filter(pk=invitation_id).first()
    if invitation is None:  # someone else's, decided, expired or missing: all the same answer
        raise ApplicationError("Not found.", code="not_found", status=404)
    return invitation


@transaction.atomic
def invitation_accept(*, user, invitation_id: int) -> Membership:
    """The invitee accepts: the membership is created with the offered role and functions."""
    invitation = _open_for(user, invitation_id)
    membership, created = Membership.objects.get_or_create(
        organization=invitation.organization,
        user=user,
        defaults={"role": invitation.role, "functions": invitation.functions},
    )
    invitation.status, invitation.decided_at = InvitationStatus.ACCEPTED, timezone.now()
    invitation.save(update_fields=["status", "decided_at", "updated_at"])
    access = Access.for_user(user)
    audit_record(
        access=access,
        organization_id=invitation.organization_id,
        action="invitation.accept",
        obj=invitation,
        changes={"status": [InvitationStatus.PENDING, InvitationStatus.ACCEPTED]},
    )
    if created:
        via = f"invitation by {invitation.invited_by or 'an admin'}"
        changes = {"role": [None, membership.role], "functions": [None, membership.functions], "via": [None, via]}
        audit_record(
            access=access,
            organization_id=invitation.organization_id,
            action="membership.create",
            obj=membership,
            changes=changes,
        )
    return membership


@transaction.atomic
def invitation_decline(*, user, invitation_id: int) -> Invitation:
    invitation = _open_for(user, invitation_id)
    invitation.status, invitation.decided_at = InvitationStatus.DECLINED, timezone.now()
    invitation.save(update_fields=["status", "decided_at", "updated_at"])
    audit_record(
        access=Access.for_user(user),
        organization_id=invitation.organization_id,
        action="invitation.decline",
        obj=invitation,
        changes={"status": [InvitationStatus.PENDING, InvitationStatus.DECLINED]},
    )
    return invitation


@transaction.atomic
def invitation_revoke(*, access: Access, invitation: Invitation) -> Invitation:
    """An admin withdraws a pending invitation."""
    _require_admin(access, invitation.organization)
    if invitation.status != InvitationStatus.PENDING:
        raise ApplicationError(f"The invitation is already {invitation.status}.", code="conflict", status=409)
    invitation.status, invitation.decided_at = InvitationStatus.REVOKED, timezone.now()
    invitation.save(update_fields=["status", "decided_at", "updated_at"])
    audit_record(
        access=access,
        organization_id=invitation.organization_id,
        action="invitation.revoke",
        obj=invitation,
        changes={"status": [InvitationStatus.PENDING, InvitationStatus.REVOKED]},
    )
    return invitation
