"""The projects/endpoints REST API: CRUD as a session and as a token, validation, secrets,
idempotency, pagination, query counts, the connection test and the OpenAPI schema."""

import json
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from apps.core.models import AuditEvent, IdempotencyRecord
from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.orgs.models import Role
from apps.projects import services as project_services
from apps.projects.models import Endpoint, Project
from apps.simulator.server import SimConfig, start_in_thread
from tests.conftest import api_client_for, endpoint_fields, make_user

PROJECTS = reverse("api:project-list")
ENDPOINTS = reverse("api:endpoint-list")
AUDIT = reverse("api:auditevent-list")
SECRET = "sk-test-plaintext-123"


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


def project_url(pk) -> str:
    return reverse("api:project-detail", kwargs={"pk": pk})


def endpoint_url(pk) -> str:
    return reverse("api:endpoint-detail", kwargs={"pk": pk})


def connection_test_url(pk) -> str:
    return reverse("api:endpoint-test-connection", kwargs={"pk": pk})


def endpoint_payload(project, **overrides) -> dict:
    """endpoint_fields() as JSON-ready API input for `project` (named "secondary": "primary" exists)."""
    fields = endpoint_fields(**{"name": "secondary", **overrides})
    data = {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()}
    data["project"] = project.pk
    return data


def counts() -> dict:
    return {
        "projects": Project.objects.count(),
        "endpoints": Endpoint.objects.count(),
        "audit": AuditEvent.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
    }


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    return body["error"]


def join_second_org(world) -> None:
    """Make world.owner a member of org B as well."""
    org_services.membership_add(
        access=Access.for_user(world.outsider), org=world.other_org, username="owner", role=Role.MEMBER, functions=[]
    )


# --- projects CRUD ---------------------------------------------------------------------------


def test_owner_creates_lists_retrieves_updates_and_deletes_a_project_with_a_session(world):
    client = api_client_for(world.owner)

    created = client.post(PROJECTS, {"name": "Doc Search", "monthly_budget_usd": "1200.50"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["organization"] == "acme"
    assert body["slug"] == "doc-search"
    assert body["owner"] == "owner"
    assert body["monthly_budget_usd"] == "1200.50"
    assert body["endpoint_count"] == 0
    project = Project.objects.get(pk=body["id"])
    assert project.organization == world.org

    listed = client.get(PROJECTS)
    assert listed.status_code == 200
    assert {p["slug"] for p in listed.json()["results"]} == {"doc-search", "support-copilot"}
    copilot = next(p for p in listed.json()["results"] if p["slug"] == "support-copilot")
    assert copilot["endpoint_count"] == 1

    retrieved = client.get(project_url(project.pk))
    assert retrieved.status_code == 200
    assert retrieved.json()["name"] == "Doc Search"

    updated = client.patch(project_url(project.pk), {"stage": "pilot", "risk_tier": "high"}, format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["stage"] == "pilot"
    project.refresh_from_db()
    assert (project.stage, project.risk_tier) == ("pilot", "high")
    update_event = AuditEvent.objects.get(action="project.update", object_id=str(project.pk))
    assert update_event.changes == {"stage": ["poc", "pilot"], "risk_tier": ["medium", "high"]}

    replaced = client.put(project_url(project.pk), {"name": "Doc Search v2", "slug": "doc-search-v2"}, format="json")
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["slug"] == "doc-search-v2"

    deleted = client.delete(project_url(project.pk))
    assert deleted.status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert AuditEvent.objects.filter(action="project.delete", object_id=str(project.pk)).count() == 1
    assert client.get(project_url(project.pk)).status_code == 404


def test_read_write_token_creates_a_project_in_its_org_without_naming_it(world, tokens):
    client = api_client_for(token=tokens["read_write"])

    created = client.post(PROJECTS, {"name": "Token Made"}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["organization"] == "acme"
    project = Project.objects.get(pk=created.json()["id"])
    assert project.organization == world.org
    assert project.owner is None  # a token is nobody
    event = AuditEvent.objects.get(action="project.create", object_id=str(project.pk))
    assert event.actor_label == "token:ci-rw"


def test_read_write_token_lists_retrieves_updates_and_deletes_projects(world, tokens):
    client = api_client_for(token=tokens["read_write"])

    assert [p["id"] for p in client.get(PROJECTS).json()["results"]] == [world.project.pk]
    assert client.get(project_url(world.project.pk)).json()["slug"] == "support-copilot"

    updated = client.patch(project_url(world.project.pk), {"monthly_budget_usd": "99.00"}, format="json")
    assert updated.status_code == 200, updated.content
    world.project.refresh_from_db()
    assert world.project.monthly_budget_usd == Decimal("99.00")

    assert client.delete(project_url(world.project.pk)).status_code == 204
    assert not Project.objects.filter(pk=world.project.pk).exists()
    assert not Endpoint.objects.filter(pk=world.endpoint.pk).exists()


def test_read_write_token_cannot_name_another_organization(world, tokens):
    client = api_client_for(token=tokens["read_write"])
    before = counts()

    response = client.post(PROJECTS, {"name": "Smuggled", "organization": "globex"}, format="json")

    assert "organization" in error_of(response, 400)["detail"]
    assert counts() == before


def test_session_user_in_two_orgs_must_name_the_organization(world):
    join_second_org(world)
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(PROJECTS, {"name": "Where Does It Go"}, format="json")

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert "organization" in error["detail"]
    assert counts() == before


def test_session_user_in_two_orgs_creates_in_the_organization_named(world):
    join_second_org(world)
    client = api_client_for(world.owner)

    response = client.post(PROJECTS, {"name": "Globex Helper", "organization": "globex"}, format="json")

    assert response.status_code == 201, response.content
    assert Project.objects.get(pk=response.json()["id"]).organization == world.other_org
    listed = client.get(PROJECTS, {"organization": "globex"}).json()
    assert {p["slug"] for p in listed["results"]} == {"globex-bot", "globex-helper"}


def test_a_project_cannot_be_moved_to_another_organization(world):
    client = api_client_for(world.owner)

    response = client.patch(project_url(world.project.pk), {"organization": "globex"}, format="json")

    assert "organization" in error_of(response, 400)["detail"]
    world.project.refresh_from_db()
    assert world.project.organization == world.org


# --- endpoints CRUD --------------------------------------------------------------------------


def test_owner_creates_lists_retrieves_updates_and_deletes_an_endpoint_with_a_session(world):
    client = api_client_for(world.owner)

    created = client.post(ENDPOINTS, endpoint_payload(world.project), format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["organization"] == "acme"
    assert body["project"] == world.project.pk
    assert body["gpu_hourly_usd"] == "0.8000"
    assert body["has_api_key"] is False
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert AuditEvent.objects.filter(action="endpoint.create", object_id=str(endpoint.pk)).count() == 1

    listed = client.get(ENDPOINTS).json()
    assert {e["name"] for e in listed["results"]} == {"primary", "secondary"}
    assert client.get(endpoint_url(endpoint.pk)).json()["model_name"] == "sim-llama-3-8b"

    updated = client.patch(endpoint_url(endpoint.pk), {"max_replicas": 5, "model_name": "other"}, format="json")
    assert updated.status_code == 200, updated.content
    endpoint.refresh_from_db()
    assert (endpoint.max_replicas, endpoint.model_name) == (5, "other")

    assert client.delete(endpoint_url(endpoint.pk)).status_code == 204
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert AuditEvent.objects.filter(action="endpoint.delete", object_id=str(endpoint.pk)).count() == 1


def test_read_write_token_creates_updates_and_deletes_an_endpoint(world, tokens):
    client = api_client_for(token=tokens["read_write"])

    created = client.post(
        ENDPOINTS,
        endpoint_payload(
            world.project,
            price_model="hosted_api",
            input_usd_per_mtok="0.15",
            output_usd_per_mtok="0.60",
            gpu_type="",
            gpus_per_replica=None,
            gpu_hourly_usd=None,
            min_replicas=None,
            max_replicas=None,
        ),
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert Endpoint.objects.get(pk=pk).output_usd_per_mtok == Decimal("0.60")

    updated = client.patch(endpoint_url(pk), {"output_usd_per_mtok": "0.70"}, format="json")
    assert updated.status_code == 200, updated.content
    assert Endpoint.objects.get(pk=pk).output_usd_per_mtok == Decimal("0.70")

    assert client.delete(endpoint_url(pk)).status_code == 204
    assert not Endpoint.objects.filter(pk=pk).exists()


def test_duplicate_endpoint_name_in_a_project_is_refused_as_duplicate(world):
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(ENDPOINTS, endpoint_payload(world.project, name="primary"), format="json")

    error = error_of(response, 400)
    assert error["code"] == "duplicate"
    assert "name" in error["detail"]
    assert counts() == before


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["not a url", "ftp://x"])
def test_malformed_base_url_is_refused_on_create_with_a_field_error(world, base_url):
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(ENDPOINTS, endpoint_payload(world.project, base_url=base_url), format="json")

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert "http://" in str(error["detail"]["base_url"])
    assert counts() == before


@pytest.mark.parametrize("base_url", ["not a url", "ftp://x"])
def test_malformed_base_url_is_refused_on_update_and_the_old_url_stays(world, base_url):
    client = api_client_for(world.owner)
    before = counts()

    response = client.patch(endpoint_url(world.endpoint.pk), {"base_url": base_url}, format="json")

    assert "base_url" in error_of(response, 400)["detail"]
    world.endpoint.refresh_from_db()
    assert world.endpoint.base_url == "http://127.0.0.1:9/v1"
    assert counts() == before


@pytest.mark.parametrize("payload", [{"name": "Support Copilot"}, {"name": "Other Name", "slug": "support-copilot"}])
def test_duplicate_project_slug_in_the_same_org_is_refused_as_duplicate(world, payload):
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(PROJECTS, payload, format="json")

    error = error_of(response, 400)
    assert error["code"] == "duplicate"
    assert "slug" in error["detail"]
    assert counts() == before


def test_renaming_a_slug_onto_an_existing_one_is_refused_as_duplicate(world):
    client = api_client_for(world.owner)
    other = client.post(PROJECTS, {"name": "Doc Search"}, format="json").json()
    before = counts()

    response = client.patch(project_url(other["id"]), {"slug": "support-copilot"}, format="json")

    assert error_of(response, 400)["code"] == "duplicate"
    assert Project.objects.get(pk=other["id"]).slug == "doc-search"
    assert counts() == before


def test_same_slug_in_another_org_is_fine(world):
    response = api_client_for(world.outsider).post(PROJECTS, {"name": "Support Copilot"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["slug"] == "support-copilot"
    assert response.json()["organization"] == "globex"
    assert Project.objects.filter(slug="support-copilot").count() == 2


def test_negative_monthly_budget_is_refused_on_create_and_update(world):
    client = api_client_for(world.owner)
    before = counts()

    created = client.post(PROJECTS, {"name": "Cheap", "monthly_budget_usd": "-1"}, format="json")
    assert "monthly_budget_usd" in error_of(created, 400)["detail"]
    updated = client.patch(project_url(world.project.pk), {"monthly_budget_usd": "-0.01"}, format="json")
    assert "monthly_budget_usd" in error_of(updated, 400)["detail"]

    assert counts() == before
    world.project.refresh_from_db()
    assert world.project.monthly_budget_usd is None


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"gpu_hourly_usd": "-0.10"}, "gpu_hourly_usd"),
        (
            {"price_model": "hosted_api", "input_usd_per_mtok": "0.10", "output_usd_per_mtok": "-2"},
            "output_usd_per_mtok",
        ),
        ({"input_usd_per_mtok": "-0.5"}, "input_usd_per_mtok"),
    ],
)
def test_negative_prices_are_refused(world, overrides, field):
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(ENDPOINTS, endpoint_payload(world.project, **overrides), format="json")

    assert field in error_of(response, 400)["detail"]
    assert counts() == before


def test_negative_price_on_update_is_refused_and_the_old_price_stays(world):
    before = counts()

    response = api_client_for(world.owner).patch(
        endpoint_url(world.endpoint.pk), {"gpu_hourly_usd": "-1"}, format="json"
    )

    assert "gpu_hourly_usd" in error_of(response, 400)["detail"]
    world.endpoint.refresh_from_db()
    assert world.endpoint.gpu_hourly_usd == Decimal("0.80")
    assert counts() == before


def test_min_replicas_above_max_replicas_is_refused(world):
    client = api_client_for(world.owner)
    before = counts()

    created = client.post(ENDPOINTS, endpoint_payload(world.project, min_replicas=4, max_replicas=2), format="json")
    assert "min_replicas" in error_of(created, 400)["detail"]
    updated = client.patch(endpoint_url(world.endpoint.pk), {"min_replicas": 3}, format="json")  # max is 2
    assert "min_replicas" in error_of(updated, 400)["detail"]

    assert counts() == before
    world.endpoint.refresh_from_db()
    assert world.endpoint.min_replicas == 1


def test_hosted_api_without_prices_is_refused(world):
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(ENDPOINTS, endpoint_payload(world.project, price_model="hosted_api"), format="json")

    detail = error_of(response, 400)["detail"]
    assert {"input_usd_per_mtok", "output_usd_per_mtok"} <= set(detail)
    assert counts() == before


def test_unknown_project_fields_are_refused(world):
    client = api_client_for(world.owner)
    before = counts()

    created = client.post(PROJECTS, {"name": "x", "bogus": 1}, format="json")
    assert error_of(created, 400)["detail"]["bogus"] == ["Unknown field."]
    updated = client.patch(project_url(world.project.pk), {"name": "renamed", "bogus": 1}, format="json")
    assert "bogus" in error_of(updated, 400)["detail"]

    assert counts() == before
    world.project.refresh_from_db()
    assert world.project.name == "Support Copilot"


def test_unknown_endpoint_fields_are_refused(world):
    client = api_client_for(world.owner)
    before = counts()

    response = client.post(ENDPOINTS, {**endpoint_payload(world.project), "bogus": 1}, format="json")
    assert error_of(response, 400)["detail"]["bogus"] == ["Unknown field."]
    read_only = client.patch(endpoint_url(world.endpoint.pk), {"last_check_ok": True}, format="json")
    assert "last_check_ok" in error_of(read_only, 400)["detail"]

    assert counts() == before


@pytest.mark.parametrize("who", ["owner", "read_write_token"])
def test_endpoint_against_a_project_of_another_org_is_refused_as_not_found(world, tokens, who):
    client = api_client_for(world.owner) if who == "owner" else api_client_for(token=tokens["read_write"])
    before = counts()

    response = client.post(ENDPOINTS, endpoint_payload(world.other_project), format="json")

    error = error_of(response, 400)
    assert "does not exist" in str(error["detail"]["project"])
    assert counts() == before
    assert not world.other_project.endpoints.filter(name="secondary").exists()


# --- encrypted secrets -----------------------------------------------------------------------


def raw_api_key_column(pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM projects_endpoint WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_api_key_is_encrypted_at_rest_and_never_returned(world):
    client = api_client_for(world.owner)
    responses = []

    created = client.post(ENDPOINTS, endpoint_payload(world.project, api_key=SECRET), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    responses.append(created)

    raw = raw_api_key_column(pk)
    assert raw and SECRET not in raw
    assert Endpoint.objects.get(pk=pk).api_key.reveal() == SECRET

    responses.append(client.get(endpoint_url(pk)))
    responses.append(client.get(ENDPOINTS))
    responses.append(client.get(ENDPOINTS, {"project": world.project.pk}))
    responses.append(client.patch(endpoint_url(pk), {"model_name": "renamed"}, format="json"))
    put_body = {k: v for k, v in endpoint_payload(world.project).items() if k != "project"}
    responses.append(client.put(endpoint_url(pk), put_body, format="json"))
    responses.append(client.get(AUDIT))
    for response in responses:
        assert response.status_code in (200, 201), response.content
        assert SECRET not in response.content.decode()
    assert created.json()["has_api_key"] is True
    assert "api_key" not in created.json()
    assert responses[1].json()["has_api_key"] is True
    assert Endpoint.objects.get(pk=pk).api_key.reveal() == SECRET

    changes = json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert SECRET not in changes
    assert AuditEvent.objects.get(action="endpoint.create", object_id=str(pk)).changes["api_key"] == [None, "(set)"]


def test_an_update_without_api_key_keeps_the_key(world):
    client = api_client_for(world.owner)
    pk = client.post(ENDPOINTS, endpoint_payload(world.project, api_key=SECRET), format="json").json()["id"]

    for payload in ({"model_name": "m2"}, {"model_name": "m3", "api_key": ""}):
        response = client.patch(endpoint_url(pk), payload, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["has_api_key"] is True
        assert SECRET not in response.content.decode()

    endpoint = Endpoint.objects.get(pk=pk)
    assert endpoint.model_name == "m3"
    assert endpoint.api_key.reveal() == SECRET
    assert all("api_key" not in e.changes for e in AuditEvent.objects.filter(action="endpoint.update"))


def test_clear_api_key_removes_the_key(world):
    client = api_client_for(world.owner)

    response = client.patch(endpoint_url(world.endpoint.pk), {"clear_api_key": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["has_api_key"] is False
    assert Endpoint.objects.get(pk=world.endpoint.pk).api_key is None
    assert raw_api_key_column(world.endpoint.pk) in ("", None)
    assert client.get(endpoint_url(world.endpoint.pk)).json()["has_api_key"] is False
    event = AuditEvent.objects.get(action="endpoint.update", object_id=str(world.endpoint.pk))
    assert event.changes["api_key"] == ["(set)", "(removed)"]


def test_a_new_api_key_replaces_the_old_one_and_the_audit_trail_holds_neither(world):
    client = api_client_for(world.owner)

    response = client.patch(endpoint_url(world.endpoint.pk), {"api_key": SECRET}, format="json")

    assert response.status_code == 200, response.content
    assert SECRET not in response.content.decode()
    assert Endpoint.objects.get(pk=world.endpoint.pk).api_key.reveal() == SECRET
    assert SECRET not in raw_api_key_column(world.endpoint.pk)
    event = AuditEvent.objects.get(action="endpoint.update", object_id=str(world.endpoint.pk))
    assert event.changes["api_key"] == ["(set)", "(changed)"]
    trail = client.get(AUDIT).content.decode()
    assert SECRET not in trail and "sk-acme-very-secret" not in trail


def test_the_idempotency_record_of_an_endpoint_create_does_not_hold_the_key(world):
    client = api_client_for(world.owner)

    response = client.post(
        ENDPOINTS, endpoint_payload(world.project, api_key=SECRET), format="json", HTTP_IDEMPOTENCY_KEY="ep-1"
    )

    assert response.status_code == 201, response.content
    record = IdempotencyRecord.objects.get(key="ep-1")
    assert SECRET not in json.dumps(record.response_body)
    assert SECRET not in record.request_fingerprint


# --- Idempotency-Key ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "read_write_token"])
def test_same_idempotency_key_and_body_creates_one_project_and_replays_the_response(world, tokens, who):
    client = api_client_for(world.owner) if who == "owner" else api_client_for(token=tokens["read_write"])
    before = counts()

    first = client.post(PROJECTS, {"name": "Once Only"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    second = client.post(PROJECTS, {"name": "Once Only"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Project.objects.filter(name="Once Only").count() == 1
    assert counts()["projects"] == before["projects"] + 1
    assert counts()["audit"] == before["audit"] + 1


def test_same_idempotency_key_with_a_different_body_is_a_conflict(world):
    client = api_client_for(world.owner)
    client.post(PROJECTS, {"name": "Once Only"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    before = counts()

    response = client.post(PROJECTS, {"name": "Something Else"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert error_of(response, 422)["code"] == "idempotency_conflict"
    assert not Project.objects.filter(name="Something Else").exists()
    assert counts() == before


def test_a_key_is_per_principal_so_another_user_reusing_it_creates_its_own(world):
    api_client_for(world.owner).post(PROJECTS, {"name": "Shared Key"}, format="json", HTTP_IDEMPOTENCY_KEY="k")

    response = api_client_for(world.outsider).post(
        PROJECTS, {"name": "Shared Key"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == "globex"
    assert "Idempotent-Replayed" not in response
    assert Project.objects.filter(name="Shared Key").count() == 2


def test_a_failed_post_with_a_key_can_be_retried_with_the_same_key_and_a_valid_body(world):
    client = api_client_for(world.owner)
    before = counts()

    failed = client.post(
        PROJECTS, {"name": "Retry Me", "monthly_budget_usd": "-5"}, format="json", HTTP_IDEMPOTENCY_KEY="retry"
    )
    assert failed.status_code == 400
    duplicate = client.post(PROJECTS, {"name": "Support Copilot"}, format="json", HTTP_IDEMPOTENCY_KEY="retry")
    assert error_of(duplicate, 400)["code"] == "duplicate"
    assert counts() == before

    retried = client.post(PROJECTS, {"name": "Retry Me"}, format="json", HTTP_IDEMPOTENCY_KEY="retry")

    assert retried.status_code == 201, retried.content
    assert "Idempotent-Replayed" not in retried
    assert Project.objects.filter(name="Retry Me").count() == 1
    again = client.post(PROJECTS, {"name": "Retry Me"}, format="json", HTTP_IDEMPOTENCY_KEY="retry")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == retried.json()


# --- pagination -----------------------------------------------------------------------------


@pytest.fixture
def sixty_projects(db):
    user = make_user("solo")
    org = org_services.organization_create(name="Solo", slug="solo", owner=user)
    access = Access.for_user(user)
    for i in range(60):
        project_services.project_create(access=access, organization=org, name=f"Project {i:02d}")
    return user


def test_project_list_pages_by_50_with_a_next_link(sixty_projects):
    client = api_client_for(sixty_projects)

    first = client.get(PROJECTS).json()

    assert first["count"] == 60
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert "page=2" in first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 10
    assert second["next"] is None
    names = [p["name"] for p in first["results"] + second["results"]]
    assert names == [f"Project {i:02d}" for i in range(60)]


def test_page_size_query_parameter_is_honoured(sixty_projects):
    client = api_client_for(sixty_projects)

    page = client.get(PROJECTS, {"page_size": 10}).json()

    assert page["count"] == 60
    assert len(page["results"]) == 10
    assert "page=2" in page["next"] and "page_size=10" in page["next"]
    last = client.get(PROJECTS, {"page_size": 10, "page": 6}).json()
    assert len(last["results"]) == 10 and last["next"] is None


# --- test-connection action -----------------------------------------------------------------


def test_test_connection_against_the_simulator_reports_ok_and_its_models(world, simulator):
    client = api_client_for(world.owner)
    patched = client.patch(endpoint_url(world.endpoint.pk), {"base_url": simulator.base_url}, format="json")
    assert patched.status_code == 200, patched.content

    response = client.post(connection_test_url(world.endpoint.pk))

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["ok"] is True
    assert "sim-llama-3-8b" in result["models"]
    assert result["status_code"] == 200
    assert result["url"] == simulator.base_url + "/models"
    assert "is served" in result["message"]
    world.endpoint.refresh_from_db()
    assert world.endpoint.last_check_ok is True
    assert world.endpoint.last_check_at is not None
    assert world.endpoint.last_check_detail == result["message"]


def test_test_connection_with_a_model_the_simulator_does_not_serve_is_not_ok(world, simulator):
    client = api_client_for(world.owner)
    client.patch(
        endpoint_url(world.endpoint.pk), {"base_url": simulator.base_url, "model_name": "gpt-nope"}, format="json"
    )

    result = client.post(connection_test_url(world.endpoint.pk)).json()

    assert result["ok"] is False
    assert result["models"] == ["sim-llama-3-8b"]
    assert "'gpt-nope'" in result["message"]
    assert "not among them" in result["message"].lower()
    world.endpoint.refresh_from_db()
    assert world.endpoint.last_check_ok is False
    assert "gpt-nope" in world.endpoint.last_check_detail


def test_test_connection_to_a_closed_port_is_a_result_not_a_500(world):
    client = api_client_for(world.owner)
    assert world.endpoint.base_url == "http://127.0.0.1:9/v1"

    response = client.post(connection_test_url(world.endpoint.pk))

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["ok"] is False
    assert result["message"].startswith("Could not connect")
    assert result["models"] == [] and result["status_code"] is None
    world.endpoint.refresh_from_db()
    assert world.endpoint.last_check_ok is False
    assert world.endpoint.last_check_detail == result["message"]
    assert world.endpoint.last_check_at is not None


def test_test_connection_to_a_private_address_is_refused_when_private_endpoints_are_off(world, settings):
    settings.READINESS_ALLOW_PRIVATE_ENDPOINTS = False

    response = api_client_for(world.owner).post(connection_test_url(world.endpoint.pk))

    assert response.status_code == 200, response.content
    assert response.json()["ok"] is False
    assert response.json()["message"].startswith("Refused")
    assert "loopback" in response.json()["message"]


def test_test_connection_to_a_keyed_simulator_succeeds_only_with_its_key(world):
    server = start_in_thread(config=SimConfig(api_key="k"))
    try:
        client = api_client_for(world.owner)
        url = endpoint_url(world.endpoint.pk)
        client.patch(url, {"base_url": server.base_url}, format="json")  # keeps the stored key (a wrong one)

        wrong_key = client.post(connection_test_url(world.endpoint.pk)).json()
        assert wrong_key["ok"] is False
        assert wrong_key["status_code"] == 401
        assert "HTTP 401" in wrong_key["message"]

        client.patch(url, {"clear_api_key": True}, format="json")
        no_key = client.post(connection_test_url(world.endpoint.pk)).json()
        assert no_key["ok"] is False and no_key["status_code"] == 401

        client.patch(url, {"api_key": "k"}, format="json")
        right_key = client.post(connection_test_url(world.endpoint.pk))
        assert right_key.json()["ok"] is True, right_key.json()
        assert "k" not in json.dumps(right_key.json()["models"])
        world.endpoint.refresh_from_db()
        assert world.endpoint.last_check_ok is True
    finally:
        server.shutdown()
        server.server_close()


def test_a_read_token_cannot_run_the_connection_test(world, tokens):
    response = api_client_for(token=tokens["read"]).post(connection_test_url(world.endpoint.pk))

    assert error_of(response, 403)["code"] == "permission_denied"
    world.endpoint.refresh_from_db()
    assert world.endpoint.last_check_at is None


# --- OpenAPI schema -------------------------------------------------------------------------


def test_openapi_schema_describes_projects_and_the_bearer_token_scheme(db):
    from rest_framework.test import APIClient

    response = APIClient().get(reverse("api:schema"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/projects/" in text
    assert "bearerToken" in text

    schema = APIClient().get(reverse("api:schema"), {"format": "json"}).json()
    assert "/api/v1/projects/" in schema["paths"]
    assert "/api/v1/endpoints/{id}/test-connection/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    endpoint_props = schema["components"]["schemas"]["Endpoint"]["properties"]
    assert "api_key" not in endpoint_props  # write-only: only in the request component
    assert "has_api_key" in endpoint_props


def test_a_key_in_flight_is_409_and_an_abandoned_claim_is_taken_over(world, tokens):
    from datetime import timedelta

    from django.utils import timezone

    client = api_client_for(token=tokens["read_write"])
    body = {"name": "Slow One"}
    # Another request with this key is still running: its claim exists without a response yet.
    first = client.post(PROJECTS, body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    record = IdempotencyRecord.objects.get(key="slow")
    IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=0, response_body={})
    in_flight = client.post(PROJECTS, body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert error_of(in_flight, 409)["code"] == "idempotency_in_flight"
    assert Project.objects.filter(name="Slow One").count() == 1
    # Ten minutes later the claim is taken as abandoned (its process died): the request runs again.
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    Project.objects.filter(pk=first.json()["id"]).delete()
    again = client.post(PROJECTS, body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert again.status_code == 201 and Project.objects.filter(name="Slow One").count() == 1


def test_tokens_of_one_organization_share_their_keys(world, tokens):
    from apps.orgs.models import ApiToken

    _, other_rw = org_services.api_token_create(
        access=Access.for_user(world.owner), org=world.org, name="ci-2", scope="read_write"
    )
    first = api_client_for(token=tokens["read_write"]).post(
        PROJECTS, {"name": "Jira Made"}, format="json", HTTP_IDEMPOTENCY_KEY="JIRA-1"
    )
    second = api_client_for(token=other_rw).post(
        PROJECTS, {"name": "Jira Made"}, format="json", HTTP_IDEMPOTENCY_KEY="JIRA-1"
    )
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert Project.objects.filter(name="Jira Made").count() == 1
    assert ApiToken.objects.filter(organization=world.org).count() == 3
