"""Nobody joins an organization without consent, and inviting reveals nothing about accounts.

What must survive: the membership list. An invitation changes nothing until its invitee accepts;
someone else, an outsider or an expired invitation cannot turn it into a membership.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.orgs import invitations
from apps.orgs.models import Invitation, Membership
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def invite(client, world, username, role="member", functions=("security",)):
    client.force_login(world.owner)
    return client.post(
        reverse("members", kwargs={"org_slug": "acme"}),
        {"username": username, "role": role, "functions": list(functions)},
        follow=True,
    )


def test_an_invitation_becomes_a_membership_only_when_its_invitee_accepts(client, world):
    dana = make_user("dana")
    page = invite(client, world, "dana")
    assert "Invitation recorded for dana" in page.content.decode()
    assert not Membership.objects.filter(organization=world.org, user=dana).exists(), "no consent yet"
    assert 'data-testid="pending-invitations"' in page.content.decode()
    client.force_login(dana)
    home = client.get(reverse("home"), follow=True)
    assert home.request["PATH_INFO"] == reverse("invitations"), "no org yet: the invitation is shown first"
    assert "Acme" in home.content.decode() and 'data-testid="invitations-link"' in home.content.decode()
    invitation = Invitation.objects.get(username="dana")
    joined = client.post(reverse("invitation-answer", kwargs={"pk": invitation.pk, "answer": "accept"}))
    assert joined.status_code == 302 and joined["Location"] == reverse("dashboard", kwargs={"org_slug": "acme"})
    membership = Membership.objects.get(organization=world.org, user=dana)
    assert (membership.role, membership.functions) == ("member", ["security"])
    assert AuditEvent.objects.filter(action="invitation.accept", actor=dana).exists()
    created = AuditEvent.objects.get(action="membership.create", object_id=str(membership.pk))
    assert created.changes["via"] == [None, "invitation by owner"]
    again = client.post(reverse("invitation-answer", kwargs={"pk": invitation.pk, "answer": "accept"}))
    assert again.status_code == 404, "an accepted invitation is spent"


def test_inviting_a_username_that_does_not_exist_answers_exactly_as_for_one_that_does(client, world):
    make_user("erin")
    real, ghost = invite(client, world, "erin"), invite(client, world, "nobody-here")
    assert real.status_code == ghost.status_code == 200
    pairs = ((real, "erin"), (ghost, "nobody-here"))
    said = [[str(m).replace(name, "NAME") for m in response.context["messages"]] for response, name in pairs]
    assert said[0] == said[1] and len(said[0]) == 1
    assert Invitation.objects.filter(organization=world.org, status="pending").count() == 2


def test_only_the_invitee_can_answer_and_nobody_else_learns_the_invitation_exists(client, world):
    make_user("dana")
    mallory = make_user("mallory")
    invitation = invitations.invitation_create(
        access=world.access(world.owner), org=world.org, username="dana", role="admin", functions=[]
    )
    for user in (mallory, world.outsider, world.member):
        client.force_login(user)
        for answer in ("accept", "decline"):
            url = reverse("invitation-answer", kwargs={"pk": invitation.pk, "answer": answer})
            assert client.post(url).status_code == 404
        listed = client.get(reverse("invitations")).context["invitations"]
        assert list(listed) == []
    invitation.refresh_from_db()
    assert invitation.status == "pending"
    assert not Membership.objects.filter(user=mallory, organization=world.org).exists()


def test_an_expired_or_withdrawn_invitation_cannot_be_accepted(client, world):
    dana = make_user("dana")
    owner = world.access(world.owner)
    old = invitations.invitation_create(access=owner, org=world.org, username="dana", role="member", functions=[])
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApplicationError):
        invitations.invitation_accept(user=dana, invitation_id=old.pk)
    fresh = invitations.invitation_create(access=owner, org=world.org, username="dana", role="member", functions=[])
    client.force_login(world.member)  # a member cannot withdraw it
    revoke = reverse("invitation-revoke", kwargs={"org_slug": "acme", "pk": fresh.pk})
    assert client.post(revoke).status_code == 403
    client.force_login(world.outsider)
    assert client.post(revoke).status_code == 404
    client.force_login(world.owner)
    assert client.post(revoke).status_code == 302
    with pytest.raises(ApplicationError):
        invitations.invitation_accept(user=dana, invitation_id=fresh.pk)
    assert not Membership.objects.filter(user=dana, organization=world.org).exists()


def test_declining_leaves_no_membership(client, world):
    dana = make_user("dana")
    invitation = invitations.invitation_create(
        access=world.access(world.owner), org=world.org, username="dana", role="member", functions=[]
    )
    client.force_login(dana)
    client.post(reverse("invitation-answer", kwargs={"pk": invitation.pk, "answer": "decline"}))
    invitation.refresh_from_db()
    assert invitation.status == "declined"
    assert not Membership.objects.filter(user=dana, organization=world.org).exists()


def test_who_may_invite_and_to_what(client, world):
    with pytest.raises(ApplicationError) as info:
        invitations.invitation_create(
            access=world.access(world.member), org=world.org, username="x", role="member", functions=[]
        )
    assert info.value.status == 403
    client.force_login(world.viewer)
    assert (
        client.post(reverse("members", kwargs={"org_slug": "acme"}), {"username": "x", "role": "member"}).status_code
        == 403
    )
    with pytest.raises(ApplicationError, match="already a member"):
        invitations.invitation_create(
            access=world.access(world.owner), org=world.org, username="member", role="member", functions=[]
        )
    invitations.invitation_create(
        access=world.access(world.owner), org=world.org, username="zed", role="member", functions=[]
    )
    with pytest.raises(ApplicationError, match="pending invitation"):
        invitations.invitation_create(
            access=world.access(world.owner), org=world.org, username="zed", role="member", functions=[]
        )
