"""Tokens and deactivated accounts (User.is_active off).

A personal token is its person: once the account is deactivated it neither reads nor writes (401,
the error shape). An organization token belongs to the organization, not to the admin who made
it, and keeps working when that admin is deactivated (README, REST API): the token page marks
such a creator so the token can be revoked and replaced.
"""

import pytest
from django.core.cache import cache

from apps.orgs import services
from apps.orgs.models import TokenScope
from apps.projects.models import Project
from tests.conftest import api_client_for

PROJECTS = "/api/v1/projects/"


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def deactivate(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "detail"}
    return body["error"]


def test_a_personal_token_of_a_deactivated_member_can_neither_read_nor_write(world):
    _, plaintext = services.personal_token_create(
        access=world.access(world.member), org=world.org, name="cli", scope=TokenScope.READ_WRITE
    )
    client = api_client_for(token=plaintext)
    assert client.get(PROJECTS).status_code == 200

    deactivate(world.member)
    read = client.get(PROJECTS)
    write = client.post(PROJECTS, {"organization": "acme", "name": "Sneaky"}, format="json")
    patch = client.patch(f"{PROJECTS}{world.project.pk}/", {"stage": "pilot"}, format="json")

    for response in (read, write, patch):
        error = error_of(response, 401)
        assert error["code"] == "authentication_failed" and "deactivated" in error["message"]
    assert not Project.objects.filter(name="Sneaky").exists()
    assert Project.objects.get(pk=world.project.pk).stage == "poc"


def test_a_personal_token_works_again_when_the_account_is_reactivated(world):
    _, plaintext = services.personal_token_create(
        access=world.access(world.member), org=world.org, name="cli", scope=TokenScope.READ
    )
    deactivate(world.member)
    assert api_client_for(token=plaintext).get(PROJECTS).status_code == 401

    world.member.is_active = True
    world.member.save(update_fields=["is_active"])

    assert api_client_for(token=plaintext).get(PROJECTS).status_code == 200


def test_an_org_token_keeps_working_when_the_admin_who_made_it_is_deactivated(client, world):
    token, plaintext = services.api_token_create(
        access=world.access(world.owner), org=world.org, name="ci", scope=TokenScope.READ_WRITE
    )
    deactivate(world.owner)
    api = api_client_for(token=plaintext)

    assert api.get(PROJECTS).status_code == 200
    created = api.post(PROJECTS, {"organization": "acme", "name": "Pipeline project"}, format="json")
    assert created.status_code == 201, created.content

    client.force_login(world.member)  # the page marks the creator (an admin revokes from there)
    Membership = world.org.memberships.model
    Membership.objects.filter(organization=world.org, user=world.member).update(role="admin")
    page = client.get("/o/acme/tokens/").content.decode()
    assert 'data-testid="creator-deactivated"' in page
