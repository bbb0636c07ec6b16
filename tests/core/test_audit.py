import pytest
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.projects import services
from tests.conftest import api_client_for


def test_services_record_create_update_delete_with_before_and_after(world):
    access = world.access(world.owner)
    project = services.project_update(access=access, project=world.project, stage="pilot")
    event = AuditEvent.objects.filter(action="project.update").get()
    assert event.organization == world.org
    assert event.actor == world.owner and event.actor_label == "owner"
    assert event.changes == {"stage": ["poc", "pilot"]}
    services.project_delete(access=access, project=project)
    deleted = AuditEvent.objects.get(action="project.delete")
    assert deleted.changes["name"] == ["Support Copilot", None]


def test_an_update_that_changes_nothing_records_nothing(world):
    before = AuditEvent.objects.count()
    services.project_update(access=world.access(world.owner), project=world.project, name="Support Copilot")
    assert AuditEvent.objects.count() == before


def test_audit_events_cannot_be_changed_or_deleted(world):
    event = AuditEvent.objects.filter(organization=world.org).first()
    event.action = "tampered"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")


def test_endpoint_key_changes_are_audited_without_the_key(world):
    services.endpoint_update(access=world.access(world.owner), endpoint=world.endpoint, api_key="sk-new-secret")
    event = AuditEvent.objects.get(action="endpoint.update")
    assert event.changes["api_key"] == ["(set)", "(changed)"]
    assert "sk-" not in str(AuditEvent.objects.values_list("changes", flat=True))


def test_audit_api_lists_only_the_callers_organizations(world):
    outsider_body = api_client_for(world.outsider).get(reverse("api:auditevent-list")).json()
    assert {e["organization"] for e in outsider_body["results"]} == {"globex"}
    owner_body = api_client_for(world.owner).get(reverse("api:auditevent-list") + "?action=endpoint.create").json()
    assert [e["object_repr"] for e in owner_body["results"]] == ["Support Copilot / primary"]


def test_audit_page_shows_the_trail_and_filters_by_action(client, world):
    client.force_login(world.viewer)
    response = client.get(reverse("audit", kwargs={"org_slug": "acme"}) + "?action=membership")
    assert response.status_code == 200
    text = response.content.decode()
    assert "membership.create" in text and "project.create" not in text
