from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.debug import sensitive_variables

from apps.core.errors import ApplicationError
from apps.core.services import audit_record, diff, snapshot
from apps.orgs.access import Access
from apps.orgs.models import ApiToken, Function, Membership, Organization, Role, TokenScope, new_token_material

MEMBERSHIP_FIELDS = ["role", "functions"]
TOKEN_FIELDS = ["name", "scope", "expires_at", "revoked_at", "acts_for"]


def _require_admin(access: Access, org: Organization) -> None:
    if not access.can_admin(org.pk):
        raise ApplicationError("Only owners and admins can manage people and tokens.", code="forbidden", status=403)


def _clean_functions(functions) -> list[str]:
    valid = set(Function.values)
    unknown = sorted(set(functions) - valid)
    if unknown:
        raise ApplicationError(f"Unknown function(s): {', '.join(unknown)}", detail={"functions": unknown})
    return sorted(set(functions))


@transaction.atomic
def organization_create(*, name: str, owner, slug: str = "") -> Organization:
    """Create an organization with `owner` as its first member (role owner)."""
    slug = slugify(slug or name)[:60]
    if not slug:
        raise ApplicationError("The organization needs a name.", detail={"name": ["This field is required."]})
    if Organization.objects.filter(slug=slug).exists():
        raise ApplicationError("That organization slug is taken.", code="duplicate", detail={"slug": [slug]})
    org = Organization.objects.create(name=name.strip(), slug=slug)
    membership = Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    audit_record(
        access=Access.for_user(owner),
        organization_id=org.pk,
        action="membership.create",
        obj=membership,
        changes={"role": [None, Role.OWNER]},
    )
    return org


@transaction.atomic
def membership_add(*, access: Access, org: Organization, username: str, role: str, functions: list[str]) -> Membership:
    _require_admin(access, org)
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"No user named {username!r}.", detail={"username": ["Unknown user."]})
    if role not in Role.values:
        raise ApplicationError("Unknown role.", detail={"role": [role]})
    if role == Role.OWNER and access.roles.get(org.pk) != Role.OWNER:
        raise ApplicationError("Only an owner can make another owner.", code="forbidden", status=403)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                organization=org, user=user, role=role, functions=_clean_functions(functions)
            )
    except IntegrityError:
        raise ApplicationError(f"{username} is already a member.", code="duplicate") from None
    audit_record(
        access=access,
        organization_id=org.pk,
        action="membership.create",
        obj=membership,
        changes=diff({}, snapshot(membership, MEMBERSHIP_FIELDS)),
    )
    return membership


def _owners_left(org_id: int, excluding: Membership) -> int:
    return Membership.objects.filter(organization_id=org_id, role=Role.OWNER).exclude(pk=excluding.pk).count()


@transaction.atomic
def membership_update(*, access: Access, membership: Membership, role: str, functions: list[str]) -> Membership:
    org = membership.organization
    _require_admin(access, org)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", detail={"role": [role]})
    caller_role = access.roles.get(org.pk)
    if Role.OWNER in (role, membership.role) and caller_role != Role.OWNER:
        raise ApplicationError("Only an owner can grant or remove the owner role.", code="forbidden", status=403)
    if membership.role == Role.OWNER and role != Role.OWNER and _owners_left(org.pk, membership) == 0:
        raise ApplicationError("An organization must keep at least one owner.")
    before = snapshot(membership, MEMBERSHIP_FIELDS)
    membership.role = role
    membership.functions = _clean_functions(functions)
    membership.save(update_fields=["role", "functions", "updated_at"])
    audit_record(
        access=access,
        organization_id=org.pk,
        action="membership.update",
        obj=membership,
        changes=diff(before, snapshot(membership, MEMBERSHIP_FIELDS)),
    )
    return membership


@transaction.atomic
def membership_remove(*, access: Access, membership: Membership) -> None:
    org = membership.organization
    _require_admin(access, org)
    if membership.role == Role.OWNER and access.roles.get(org.pk) != Role.OWNER:
        raise ApplicationError("Only an owner can remove an owner.", code="forbidden", status=403)
    if membership.role == Role.OWNER and _owners_left(org.pk, membership) == 0:
        raise ApplicationError("An organization must keep at least one owner.")
    audit_record(
        access=access,
        organization_id=org.pk,
        action="membership.delete",
        obj=membership,
        changes=diff(snapshot(membership, MEMBERSHIP_FIELDS), {}),
    )
    membership.delete()


@sensitive_variables()  # the new token, in clear
@transaction.atomic
def api_token_create(
    *, access: Access, org: Organization, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create an organization token (admins); returns it with the plaintext, shown once, never stored."""
    _require_admin(access, org)
    return _token_create(access, org, name=name, scope=scope, expires_at=expires_at, acts_for=None)


@sensitive_variables()  # the new token, in clear
@transaction.atomic
def personal_token_create(
    *, access: Access, org: Organization, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A member's own token: it acts as them (role capped by the scope, their functions), so a
    person can attest, decide waivers and sign gates over the API. A viewer gets read scope only."""
    if access.token is not None or access.user is None or not access.can_read(org.pk):
        raise ApplicationError("Not found.", code="not_found", status=404)
    if scope == TokenScope.READ_WRITE and not access.can_write(org.pk):
        raise ApplicationError(
            "Your role is read-only: a personal token can only be read-only.",
            detail={"scope": ["Read only for viewers."]},
        )
    return _token_create(access, org, name=name, scope=scope, expires_at=expires_at, acts_for=access.user)


def _token_create(access, org, *, name, scope, expires_at, acts_for) -> tuple[ApiToken, str]:
    if not name.strip():
        raise ApplicationError("The token needs a name.", detail={"name": ["This field is required."]})
    if scope not in TokenScope.values:
        raise ApplicationError("Unknown scope.", detail={"scope": [scope]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must be in the future.", detail={"expires_at": ["Must be in the future."]})
    plaintext, lookup, secret_hash = new_token_material()
    token = ApiToken.objects.create(
        organization=org,
        name=name.strip(),
        lookup_id=lookup,
        secret_hash=secret_hash,
        scope=scope,
        expires_at=expires_at,
        created_by=access.user,
        acts_for=acts_for,
    )
    audit_record(
        access=access,
        organization_id=org.pk,
        action="api_token.create",
        obj=token,
        changes=diff({}, snapshot(token, TOKEN_FIELDS)),
    )
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, access: Access, token: ApiToken) -> ApiToken:
    """Admins revoke any token of their org; a member revokes their own personal tokens."""
    own = token.acts_for_id is not None and access.token is None and token.acts_for_id == getattr(access.user, "pk", 0)
    if not own:
        _require_admin(access, token.organization)
    if token.revoked_at is not None:
        return token  # revoking twice is a no-op, not an error
    before = snapshot(token, TOKEN_FIELDS)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at", "updated_at"])
    audit_record(
        access=access,
        organization_id=token.organization_id,
        action="api_token.revoke",
        obj=token,
        changes=diff(before, snapshot(token, TOKEN_FIELDS)),
    )
    return token


def password_reset_mail_send(*, email: str) -> int:
    """Mail a one-time password-reset link to each active account with this address (none: no
    mail); returns how many were sent. The link starts with READINESS_BASE_URL. Run by a task, so
    the request that asked takes the same time whether or not an account has the address."""
    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return 0
    base = urlsplit(settings.READINESS_BASE_URL)
    users = list(form.get_users(email))
    form.save(
        domain_override=base.netloc,
        use_https=base.scheme == "https",
        extra_email_context={"base_url": settings.READINESS_BASE_URL.rstrip("/")},
    )
    return len(users)
