"""What the project API answers always has every property its schema names (fuzzed in CI)."""

import pytest

from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_a_project_made_by_an_org_token_has_a_null_owner_and_every_property_on_patch(world, tokens):
    api = api_client_for(token=tokens["read_write"])
    made = api.post("/api/v1/projects/", {"name": "Token Made"}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["owner"] is None and made.json()["endpoint_count"] == 0
    patched = api.patch(f"/api/v1/projects/{made.json()['id']}/", {"use_case": "triage"}, format="json").json()
    assert {"owner", "endpoint_count", "id", "name", "created_at", "updated_at"} <= set(patched)
    assert patched["endpoint_count"] == 0
    mine = (
        api_client_for(world.owner)
        .patch(f"/api/v1/projects/{world.project.pk}/", {"use_case": "x"}, format="json")
        .json()
    )
    assert mine["owner"] == "owner" and mine["endpoint_count"] == 1
