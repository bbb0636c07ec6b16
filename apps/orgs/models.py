import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet

# The checklist categories a project needs before it can be GO, unless its organization says
# otherwise: the shipped templates' categories (apps/checklists/defaults.py).
DEFAULT_REQUIRED_CATEGORIES = ("security", "monitoring", "cost", "reliability")


def default_required_categories() -> list[str]:
    return list(DEFAULT_REQUIRED_CATEGORIES)


class Organization(TimeStampedModel):
    """A tenant: a customer organization. Every tenant-owned row reaches one."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    required_checklist_categories = models.JSONField(
        default=default_required_categories,
        blank=True,
        help_text="Checklist categories every project needs before it can be GO.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


WRITER_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER})
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Function(models.TextChoices):
    """Business functions; later they decide who may sign which gate."""

    SECURITY = "security", "Security"
    LEGAL = "legal", "Legal"
    FINANCE = "finance", "Finance"
    ENGINEERING = "engineering", "Engineering"
    PRODUCT = "product", "Product"


class Membership(TimeStampedModel):
    org_lookup = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    functions = models.JSONField(default=list, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["organization__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user_and_org"),
            models.CheckConstraint(condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"


class Invitation(TimeStampedModel):
    """An admin's offer of a membership to a username; the membership exists only once the person
    with that username accepts. Nobody is added to an organization without consent, and inviting
    says nothing about whether the username exists."""

    org_lookup = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150)  # as the admin typed it; matched when someone accepts
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    functions = models.JSONField(default=list, blank=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "username"],
                condition=models.Q(status="pending"),
                name="one_pending_invitation_per_username",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.username} to {self.organization}"

    @property
    def is_open(self) -> bool:
        return self.status == InvitationStatus.PENDING and self.expires_at > timezone.now()


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    READ_WRITE = "read_write", "Read and write"


TOKEN_PREFIX = "rdy_"


def hash_token_secret(secret: str) -> str:
    # The secret is 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_material() -> tuple[str, str, str]:
    """(full token shown once, lookup id, hash of the secret)."""
    lookup = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}{lookup}_{secret}", lookup, hash_token_secret(secret)


class ApiTokenQuerySet(TenantQuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(TimeStampedModel):
    """A per-organization API credential. Only a hash of the secret is stored."""

    org_lookup = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    lookup_id = models.CharField(max_length=24, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.READ)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # A personal token acts as this member: their role (capped by the scope) and their functions,
    # so it can attest items, decide waivers and sign gates as them. Org tokens leave it empty.
    acts_for = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="personal_tokens"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({TOKEN_PREFIX}{self.lookup_id}_…)"

    @property
    def display_prefix(self) -> str:
        return f"{TOKEN_PREFIX}{self.lookup_id}_"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"
