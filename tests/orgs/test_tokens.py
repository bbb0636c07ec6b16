"""API tokens (hashing, authentication, scopes, tenancy, the HTML page) and membership rules."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.orgs import services
from apps.orgs.access import Access
from apps.orgs.models import ApiToken, Membership, Role, TokenScope, hash_token_secret
from apps.projects.models import Project
from tests.conftest import api_client_for, make_user

PROJECTS = reverse("api:project-list")
ORGANIZATIONS = reverse("api:organization-list")
MEMBERSHIPS = reverse("api:membership-list")
TOKEN_PATTERN = re.compile(r"rdy_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


def split(plaintext: str) -> tuple[str, str]:
    """rdy_<lookup>_<secret> -> (lookup, secret); the secret itself may contain "_"."""
    lookup, _, secret = plaintext.removeprefix("rdy_").partition("_")
    return lookup, secret


def token_row(plaintext: str) -> ApiToken:
    return ApiToken.objects.get(lookup_id=split(plaintext)[0])


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    return body["error"]


# --- storage --------------------------------------------------------------------------------


def test_token_plaintext_starts_with_rdy_and_only_its_hash_is_stored(world, tokens):
    for plaintext in tokens.values():
        assert plaintext.startswith("rdy_")
        assert TOKEN_PATTERN.fullmatch(plaintext)
        lookup, secret = split(plaintext)
        token = token_row(plaintext)
        assert token.secret_hash == hash_token_secret(secret)
        assert len(token.secret_hash) == 64
        assert token.secret_hash not in (plaintext, secret)
        for field in ApiToken._meta.concrete_fields:
            value = str(getattr(token, field.attname))
            assert plaintext not in value and secret not in value, field.name
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM orgs_apitoken WHERE lookup_id = %s", [lookup])
            row = cursor.fetchone()
        assert row is not None
        assert all(secret not in str(column) for column in row)


def test_the_token_audit_event_does_not_hold_the_secret(world, tokens):
    events = AuditEvent.objects.filter(action="api_token.create")
    assert events.count() == 2
    for plaintext in tokens.values():
        _, secret = split(plaintext)
        assert all(secret not in str(e.changes) and secret not in e.object_repr for e in events)


# --- authentication -------------------------------------------------------------------------


def test_a_token_authenticates_api_requests_and_records_when_it_was_used(world, tokens):
    assert token_row(tokens["read"]).last_used_at is None
    started = timezone.now()

    response = api_client_for(token=tokens["read"]).get(PROJECTS)

    assert response.status_code == 200
    assert [p["slug"] for p in response.json()["results"]] == ["support-copilot"]
    used = token_row(tokens["read"]).last_used_at
    assert used is not None and used >= started
    assert token_row(tokens["read_write"]).last_used_at is None


def test_without_credentials_the_api_answers_401_in_the_error_shape(world):
    from rest_framework.test import APIClient

    error = error_of(APIClient().get(PROJECTS), 401)
    assert error["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda t: "Bearer " + t[:-3] + ("xyz" if not t.endswith("xyz") else "abc"), id="wrong-secret"),
        pytest.param(lambda t: "Bearer rdy_000000000000_" + split(t)[1], id="unknown-lookup"),
        pytest.param(lambda t: "Bearer " + split(t)[1], id="no-prefix"),
        pytest.param(lambda t: "Bearer rdy_nosecret", id="no-separator"),
        pytest.param(lambda t: "Bearer ", id="empty-token"),
    ],
)
def test_a_bad_bearer_token_is_401_in_the_error_shape(world, tokens, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header(tokens["read_write"]))

    response = client.get(PROJECTS)

    error = error_of(response, 401)
    assert error["code"] == "authentication_failed"
    assert "token" in error["message"].lower()
    assert response["WWW-Authenticate"] == "Bearer"
    assert "support-copilot" not in response.content.decode()


def test_a_bad_bearer_token_is_not_rescued_by_a_session(world, tokens):
    client = api_client_for(world.owner)
    client.credentials(HTTP_AUTHORIZATION="Bearer rdy_000000000000_nope")

    assert error_of(client.get(PROJECTS), 401)["code"] == "authentication_failed"


def test_a_revoked_token_is_401_mentioning_revoked(world, tokens):
    services.api_token_revoke(access=world.access(world.owner), token=token_row(tokens["read_write"]))

    response = api_client_for(token=tokens["read_write"]).get(PROJECTS)

    assert "revoked" in error_of(response, 401)["message"]


def test_an_expired_token_is_401_mentioning_expired(world, tokens):
    ApiToken.objects.filter(lookup_id=split(tokens["read"])[0]).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = api_client_for(token=tokens["read"]).get(PROJECTS)

    assert "expired" in error_of(response, 401)["message"]
    assert api_client_for(token=tokens["read_write"]).get(PROJECTS).status_code == 200


def test_a_token_with_a_future_expiry_still_works(world):
    expires = timezone.now() + timedelta(days=1)
    _, plaintext = services.api_token_create(
        access=world.access(world.owner), org=world.org, name="soon", scope=TokenScope.READ, expires_at=expires
    )

    assert api_client_for(token=plaintext).get(PROJECTS).status_code == 200


def test_a_token_cannot_be_created_already_expired(world):
    before = ApiToken.objects.count()

    with pytest.raises(ApplicationError) as exc:
        services.api_token_create(
            access=world.access(world.owner),
            org=world.org,
            name="past",
            scope=TokenScope.READ,
            expires_at=timezone.now() - timedelta(seconds=1),
        )

    assert "expires_at" in exc.value.detail
    assert ApiToken.objects.count() == before


# --- scopes ---------------------------------------------------------------------------------


def test_a_read_token_cannot_post_patch_or_delete(world, tokens):
    client = api_client_for(token=tokens["read"])
    detail = reverse("api:project-detail", kwargs={"pk": world.project.pk})
    before = (Project.objects.count(), AuditEvent.objects.count())

    for response in (
        client.post(PROJECTS, {"name": "Nope"}, format="json"),
        client.patch(detail, {"stage": "production"}, format="json"),
        client.put(detail, {"name": "Nope"}, format="json"),
        client.delete(detail),
    ):
        error = error_of(response, 403)
        assert error["code"] == "permission_denied"
        assert "read-only" in error["message"]

    world.project.refresh_from_db()
    assert world.project.stage == "poc"
    assert (Project.objects.count(), AuditEvent.objects.count()) == before
    assert client.get(detail).status_code == 200


def test_a_read_write_token_can_post_patch_and_delete(world, tokens):
    client = api_client_for(token=tokens["read_write"])
    detail = reverse("api:project-detail", kwargs={"pk": world.project.pk})

    created = client.post(PROJECTS, {"name": "Yes"}, format="json")
    patched = client.patch(detail, {"stage": "production"}, format="json")
    deleted = client.delete(reverse("api:project-detail", kwargs={"pk": created.json()["id"]}))

    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)
    world.project.refresh_from_db()
    assert world.project.stage == "production"
    assert not Project.objects.filter(name="Yes").exists()
    assert set(AuditEvent.objects.filter(actor_label="token:ci-rw").values_list("action", flat=True)) == {
        "project.create",
        "project.update",
        "project.delete",
    }


# --- tenancy --------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["read", "read_write"])
def test_a_token_sees_only_its_own_organization(world, tokens, scope):
    # The owner of org A also belongs to org B: the token must still see only A.
    services.membership_add(
        access=world.access(world.outsider), org=world.other_org, username="owner", role=Role.MEMBER, functions=[]
    )
    client = api_client_for(token=tokens[scope])

    projects = client.get(PROJECTS).json()
    assert projects["count"] == 1
    assert [p["organization"] for p in projects["results"]] == ["acme"]
    assert [p["id"] for p in projects["results"]] == [world.project.pk]
    orgs = client.get(ORGANIZATIONS).json()
    role = "member" if scope == "read_write" else "viewer"
    assert [(o["slug"], o["role"]) for o in orgs["results"]] == [("acme", role)]
    assert client.get(PROJECTS, {"organization": "globex"}).json()["count"] == 0
    assert client.get(reverse("api:project-detail", kwargs={"pk": world.other_project.pk})).status_code == 404
    assert client.get(reverse("api:organization-detail", kwargs={"slug": "globex"})).status_code == 404
    memberships = client.get(MEMBERSHIPS).json()["results"]
    assert {m["organization"] for m in memberships} == {"acme"}


# --- who may create tokens ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["viewer", "member", "outsider"])
def test_a_viewer_member_or_outsider_cannot_create_tokens(world, who):
    before = ApiToken.objects.count()

    with pytest.raises(ApplicationError) as exc:
        services.api_token_create(
            access=world.access(getattr(world, who)), org=world.org, name="mine", scope=TokenScope.READ_WRITE
        )

    assert exc.value.status == 403
    assert exc.value.code == "forbidden"
    assert ApiToken.objects.count() == before


def test_a_token_cannot_create_or_revoke_tokens(world, tokens):
    token_access = Access.for_token(token_row(tokens["read_write"]))

    with pytest.raises(ApplicationError) as created:
        services.api_token_create(access=token_access, org=world.org, name="child", scope=TokenScope.READ)
    with pytest.raises(ApplicationError) as revoked:
        services.api_token_revoke(access=token_access, token=token_row(tokens["read"]))

    assert created.value.status == revoked.value.status == 403
    assert token_row(tokens["read"]).revoked_at is None


def test_an_admin_can_create_tokens(world):
    services.membership_add(
        access=world.access(world.owner), org=world.org, username="outsider", role=Role.ADMIN, functions=[]
    )

    token, plaintext = services.api_token_create(
        access=world.access(world.outsider), org=world.org, name="admin-made", scope=TokenScope.READ
    )

    assert token.organization == world.org and token.created_by == world.outsider
    assert api_client_for(token=plaintext).get(PROJECTS).status_code == 200


# --- the HTML token page --------------------------------------------------------------------


def test_the_token_page_shows_a_new_token_once(client, world):
    client.force_login(world.owner)
    url = reverse("tokens", kwargs={"org_slug": "acme"})

    response = client.post(url, {"name": "deploy-bot", "scope": "read_write"})

    assert response.status_code == 200
    page = response.content.decode()
    found = TOKEN_PATTERN.findall(page)
    assert len(set(found)) == 1
    plaintext = found[0]
    token = ApiToken.objects.get(name="deploy-bot")
    assert token_row(plaintext) == token
    assert token.organization == world.org and token.scope == TokenScope.READ_WRITE
    assert token.created_by == world.owner
    assert api_client_for(token=plaintext).post(PROJECTS, {"name": "From CI"}, format="json").status_code == 201

    again = client.get(url).content.decode()
    assert plaintext not in again
    assert split(plaintext)[1] not in again
    assert token.display_prefix in again  # still listed, by its prefix only
    assert not TOKEN_PATTERN.search(again)


def test_a_viewer_cannot_use_the_token_page(client, world):
    client.force_login(world.viewer)
    before = ApiToken.objects.count()

    response = client.post(reverse("tokens", kwargs={"org_slug": "acme"}), {"name": "x", "scope": "read"})

    assert response.status_code == 403
    assert ApiToken.objects.count() == before


def test_revoking_from_the_token_page_works_and_is_audited(client, world, tokens):
    client.force_login(world.owner)
    token = token_row(tokens["read_write"])
    assert api_client_for(token=tokens["read_write"]).get(PROJECTS).status_code == 200

    response = client.post(reverse("token-revoke", kwargs={"org_slug": "acme", "pk": token.pk}))

    assert response.status_code == 302
    assert response["Location"] == reverse("tokens", kwargs={"org_slug": "acme"})
    token.refresh_from_db()
    assert token.revoked_at is not None and token.status == "revoked"
    event = AuditEvent.objects.get(action="api_token.revoke", object_id=str(token.pk))
    assert event.organization == world.org
    assert event.actor == world.owner
    assert event.changes["revoked_at"][0] is None and event.changes["revoked_at"][1]
    assert "revoked" in error_of(api_client_for(token=tokens["read_write"]).get(PROJECTS), 401)["message"]
    assert api_client_for(token=tokens["read"]).get(PROJECTS).status_code == 200

    # A second revoke is a no-op: no second event.
    client.post(reverse("token-revoke", kwargs={"org_slug": "acme", "pk": token.pk}))
    assert AuditEvent.objects.filter(action="api_token.revoke", object_id=str(token.pk)).count() == 1


def test_an_owner_of_another_org_cannot_revoke_this_orgs_token(client, world, tokens):
    client.force_login(world.outsider)
    token = token_row(tokens["read"])

    response = client.post(reverse("token-revoke", kwargs={"org_slug": "globex", "pk": token.pk}))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# --- membership rules -----------------------------------------------------------------------


def owner_membership(world) -> Membership:
    return Membership.objects.get(organization=world.org, user=world.owner)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER, Role.VIEWER])
def test_the_last_owner_cannot_be_demoted(world, role):
    membership = owner_membership(world)

    with pytest.raises(ApplicationError) as exc:
        services.membership_update(access=world.access(world.owner), membership=membership, role=role, functions=[])

    assert "at least one owner" in exc.value.message
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert not AuditEvent.objects.filter(action="membership.update").exists()


def test_the_last_owner_cannot_be_removed(world):
    with pytest.raises(ApplicationError) as exc:
        services.membership_remove(access=world.access(world.owner), membership=owner_membership(world))

    assert "at least one owner" in exc.value.message
    assert Membership.objects.filter(organization=world.org, user=world.owner, role=Role.OWNER).exists()
    assert not AuditEvent.objects.filter(action="membership.delete").exists()


def test_an_owner_can_step_down_once_another_owner_exists(world):
    access = world.access(world.owner)
    services.membership_update(
        access=access, membership=world.org.memberships.get(user=world.member), role=Role.OWNER, functions=[]
    )

    services.membership_update(access=access, membership=owner_membership(world), role=Role.ADMIN, functions=[])

    assert owner_membership(world).role == Role.ADMIN
    assert list(world.org.memberships.filter(role=Role.OWNER).values_list("user__username", flat=True)) == ["member"]


def test_an_admin_cannot_make_an_owner(world):
    owner_access = world.access(world.owner)
    services.membership_update(
        access=owner_access, membership=world.org.memberships.get(user=world.member), role=Role.ADMIN, functions=[]
    )
    admin_access = world.access(world.member)
    make_user("newcomer")
    viewer_membership = world.org.memberships.get(user=world.viewer)

    with pytest.raises(ApplicationError) as added:
        services.membership_add(access=admin_access, org=world.org, username="newcomer", role=Role.OWNER, functions=[])
    with pytest.raises(ApplicationError) as promoted:
        services.membership_update(access=admin_access, membership=viewer_membership, role=Role.OWNER, functions=[])
    with pytest.raises(ApplicationError) as self_promoted:
        services.membership_update(
            access=admin_access, membership=world.org.memberships.get(user=world.member), role=Role.OWNER, functions=[]
        )

    assert added.value.status == promoted.value.status == self_promoted.value.status == 403
    assert not world.org.memberships.filter(user__username="newcomer").exists()
    assert list(world.org.memberships.filter(role=Role.OWNER).values_list("user__username", flat=True)) == ["owner"]
    # What an admin may do: add a plain member.
    services.membership_add(access=admin_access, org=world.org, username="newcomer", role=Role.MEMBER, functions=[])
    assert world.org.memberships.get(user__username="newcomer").role == Role.MEMBER


def test_an_admin_cannot_demote_or_remove_an_owner(world):
    services.membership_update(
        access=world.access(world.owner),
        membership=world.org.memberships.get(user=world.member),
        role=Role.ADMIN,
        functions=[],
    )
    admin_access = world.access(world.member)

    with pytest.raises(ApplicationError) as demoted:
        services.membership_update(
            access=admin_access, membership=owner_membership(world), role=Role.VIEWER, functions=[]
        )
    with pytest.raises(ApplicationError) as removed:
        services.membership_remove(access=admin_access, membership=owner_membership(world))

    assert demoted.value.status == removed.value.status == 403
    assert owner_membership(world).role == Role.OWNER


def test_unknown_function_names_are_rejected(world):
    access = world.access(world.owner)
    make_user("newcomer")
    membership = world.org.memberships.get(user=world.member)

    with pytest.raises(ApplicationError) as added:
        services.membership_add(
            access=access, org=world.org, username="newcomer", role=Role.MEMBER, functions=["security", "astrology"]
        )
    with pytest.raises(ApplicationError) as updated:
        services.membership_update(access=access, membership=membership, role=Role.MEMBER, functions=["wizardry"])

    assert added.value.detail == {"functions": ["astrology"]}
    assert updated.value.detail == {"functions": ["wizardry"]}
    assert not world.org.memberships.filter(user__username="newcomer").exists()
    membership.refresh_from_db()
    assert membership.functions == ["engineering"]


def test_unknown_roles_are_rejected(world):
    with pytest.raises(ApplicationError) as exc:
        services.membership_update(
            access=world.access(world.owner),
            membership=world.org.memberships.get(user=world.member),
            role="superuser",
            functions=[],
        )

    assert "role" in exc.value.detail
    assert world.org.memberships.get(user=world.member).role == Role.MEMBER


def test_a_user_in_two_orgs_sees_both_with_their_roles(world):
    services.membership_add(
        access=world.access(world.outsider),
        org=world.other_org,
        username="owner",
        role=Role.VIEWER,
        functions=["finance"],
    )

    response = api_client_for(world.owner).get(ORGANIZATIONS)

    assert response.status_code == 200
    assert [(o["slug"], o["role"]) for o in response.json()["results"]] == [("acme", "owner"), ("globex", "viewer")]
    memberships = api_client_for(world.owner).get(MEMBERSHIPS, {"organization": "globex"}).json()["results"]
    assert {(m["username"], m["role"]) for m in memberships} == {("outsider", "owner"), ("owner", "viewer")}
    # The viewer role in B is read-only even though the user owns A.
    refused = api_client_for(world.owner).post(PROJECTS, {"name": "In B", "organization": "globex"}, format="json")
    assert error_of(refused, 403)["code"] == "forbidden"
    assert not Project.objects.filter(name="In B").exists()


def test_a_user_cannot_be_added_twice(world):
    with pytest.raises(ApplicationError) as exc:
        services.membership_add(
            access=world.access(world.owner), org=world.org, username="member", role=Role.VIEWER, functions=[]
        )

    assert exc.value.code == "duplicate"
    assert world.org.memberships.get(user=world.member).role == Role.MEMBER


def test_the_memberships_api_is_read_only(world):
    client = api_client_for(world.owner)
    membership = world.org.memberships.get(user=world.member)
    detail = reverse("api:membership-detail", kwargs={"pk": membership.pk})
    before = Membership.objects.count()

    created = client.post(MEMBERSHIPS, {"username": "outsider", "role": "owner"}, format="json")
    patched = client.patch(detail, {"role": "owner"}, format="json")
    deleted = client.delete(detail)

    for response in (created, patched, deleted):
        assert error_of(response, 405)["code"] == "method_not_allowed"
    assert Membership.objects.count() == before
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    listed = client.get(MEMBERSHIPS, {"organization": "acme"}).json()["results"]
    assert {(m["username"], m["role"]) for m in listed} == {
        ("owner", "owner"),
        ("member", "member"),
        ("viewer", "viewer"),
    }


# --- personal tokens -------------------------------------------------------------------------------


def test_a_personal_token_acts_as_its_member_capped_by_role_and_scope(world):
    member_token, plaintext = services.personal_token_create(
        access=Access.for_user(world.member), org=world.org, name="cli", scope=TokenScope.READ_WRITE
    )
    access = Access.for_token(member_token)
    assert (access.user, access.roles[world.org.pk], access.can_admin(world.org.pk)) == (world.member, "member", False)
    assert access.label == "member (token:cli)"
    owner_token, _ = services.personal_token_create(
        access=Access.for_user(world.owner), org=world.org, name="o", scope=TokenScope.READ_WRITE
    )
    assert Access.for_token(owner_token).roles[world.org.pk] == "member"  # never an admin through a token
    read, _ = services.personal_token_create(access=Access.for_user(world.owner), org=world.org, name="r", scope="read")
    assert Access.for_token(read).roles[world.org.pk] == "viewer"
    client = api_client_for(token=plaintext)
    created = client.post(PROJECTS, {"name": "Made by a person's token"}, format="json")
    assert created.status_code == 201 and created.json()["owner"] == "member"
    event = AuditEvent.objects.get(action="project.create", object_id=str(created.json()["id"]))
    assert (event.actor, event.actor_label) == (world.member, "member (token:cli)")


def test_a_viewer_gets_only_a_read_personal_token_and_outsiders_none(world):
    with pytest.raises(ApplicationError) as exc:
        services.personal_token_create(
            access=Access.for_user(world.viewer), org=world.org, name="x", scope="read_write"
        )
    assert "read-only" in exc.value.message
    token, _ = services.personal_token_create(
        access=Access.for_user(world.viewer), org=world.org, name="x", scope="read"
    )
    assert token.acts_for == world.viewer
    with pytest.raises(ApplicationError) as exc:
        services.personal_token_create(access=Access.for_user(world.outsider), org=world.org, name="x", scope="read")
    assert exc.value.status == 404
    _, other = services.personal_token_create(
        access=Access.for_user(world.member), org=world.org, name="m", scope="read"
    )
    with pytest.raises(ApplicationError):  # a token cannot mint tokens
        services.personal_token_create(
            access=Access.for_token(ApiToken.objects.get(name="m")), org=world.org, name="y", scope="read"
        )


def test_a_personal_token_stops_working_when_its_member_leaves(world):
    token, plaintext = services.personal_token_create(
        access=Access.for_user(world.member), org=world.org, name="cli", scope=TokenScope.READ_WRITE
    )
    client = api_client_for(token=plaintext)
    assert client.get(PROJECTS).status_code == 200
    services.membership_remove(
        access=Access.for_user(world.owner), membership=world.org.memberships.get(user=world.member)
    )
    response = client.get(PROJECTS)
    assert response.status_code == 401 and "left the organization" in response.json()["error"]["message"]


def test_my_tokens_page_creates_lists_and_revokes_only_my_own(client, world):
    client.force_login(world.viewer)
    page = client.post(reverse("my-tokens", args=["acme"]), {"name": "laptop", "scope": "read_write"})
    assert "Read only for viewers" in page.content.decode() and not ApiToken.objects.filter(name="laptop").exists()
    page = client.post(reverse("my-tokens", args=["acme"]), {"name": "laptop", "scope": "read"})
    assert TOKEN_PATTERN.search(page.content.decode())
    mine = ApiToken.objects.get(name="laptop")
    theirs, _ = services.personal_token_create(
        access=Access.for_user(world.member), org=world.org, name="m", scope="read"
    )
    listing = client.get(reverse("my-tokens", args=["acme"])).content.decode()
    assert "laptop" in listing and ">m<" not in listing
    assert client.post(reverse("my-token-revoke", args=["acme", theirs.pk])).status_code == 404
    assert client.post(reverse("my-token-revoke", args=["acme", mine.pk])).status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None
