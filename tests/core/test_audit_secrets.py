"""No secret reaches the audit trail, which every member (viewers included) reads on the audit page
and over the API: a secret shows as "(set)", "(changed)", "(removed)" or "(dropped: …)".

The walk finds every field that may hold a secret (an EncryptedTextField, or a name with secret,
token, key or password in it) in every installed model, so a new one cannot be added without
being classified here: a secret gets a scenario that creates, updates and deletes it through the
services; anything else says why it is not a secret.
"""

import json

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.cache import cache

from apps.core.crypto import EncryptedTextField
from apps.core.models import AuditEvent
from apps.core.services import SECRET_MARKERS
from apps.integrations import services as integrations
from apps.integrations import signing
from apps.integrations.models import Connector
from apps.orgs import services as orgs
from apps.orgs.models import TOKEN_PREFIX, ApiToken, TokenScope
from apps.projects import services as projects
from apps.projects.models import Endpoint
from tests.conftest import api_client_for, endpoint_fields


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The API rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


WORDS = ("secret", "token", "key", "password", "passwd")

NOT_SECRETS = {
    "core.IdempotencyRecord.key": "chosen by the client to de-duplicate a POST; it grants nothing",
    "probes.ProbeLimits.max_tokens_per_day": "a count of LLM tokens",
    "probes.ProbePlan.prompt_tokens": "a count of LLM tokens",
    "probes.ProbePlan.max_tokens": "a count of LLM tokens",
    "probes.ProbeRun.output_tokens": "a count of LLM tokens",
    "costs.TrafficProfile.input_tokens_per_request": "a count of LLM tokens",
    "costs.TrafficProfile.output_tokens_per_request": "a count of LLM tokens",
    "checklists.ChecklistTemplate.key": "a slug naming a checklist template",
    "checklists.TemplateItem.key": "a slug naming a checklist item",
    "checklists.Checklist.template_key": "a slug naming a checklist template",
    "integrations.Delivery.finding_key": "names the finding a delivery is about",
    "integrations.TicketLink.finding_key": "names the finding a ticket is filed under",
    "integrations.TicketLink.external_key": "the ticket's key in the other system, e.g. OPS-7",
    "django_celery_beat.PeriodicTask.routing_key": "a Celery routing key",
}


def secret_looking_fields() -> set[str]:
    found = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField) or any(w in field.name.lower() for w in WORDS):
                found.add(f"{model._meta.label}.{field.name}")
    return found


# --- one scenario per secret: create, update and delete it through the services ------------------
# Each returns the values that must never be seen in the trail (the secrets in clear, and what is
# stored for them: ciphertext or hash).


def endpoint_api_key(world) -> list[str]:
    owner, member = world.access(world.owner), world.access(world.member)
    values = ["sk-created-with-the-endpoint", "sk-typed-in-an-update", "sk-for-the-new-origin"]
    endpoint = projects.endpoint_create(
        access=owner, project=world.project, **endpoint_fields(name="second", api_key=values[0])
    )
    stored = Endpoint.objects.get(pk=endpoint.pk).api_key
    projects.endpoint_update(access=member, endpoint=endpoint, api_key=values[1])
    projects.endpoint_update(access=member, endpoint=endpoint, base_url="http://127.0.0.1:8999/v1")  # dropped
    projects.endpoint_update(access=member, endpoint=endpoint, base_url="http://127.0.0.1:8998/v1", api_key=values[2])
    projects.endpoint_update(access=member, endpoint=endpoint, clear_api_key=True)
    projects.endpoint_update(access=member, endpoint=world.endpoint, api_key="sk-replacing-the-world-key")
    projects.endpoint_delete(access=owner, endpoint=world.endpoint)
    return [*values, "sk-replacing-the-world-key", "sk-acme-very-secret", stored.ciphertext]


def connector_secret(world) -> list[str]:
    owner = world.access(world.owner)
    given, replaced = signing.new_secret(), signing.new_secret()
    hook, _ = integrations.connector_create(
        access=owner,
        organization=world.org,
        name="hook",
        kind="webhook",
        url="http://127.0.0.1:8999/hooks",
        secret=given,
        events=["decision.changed"],
    )
    generated_hook, generated = integrations.connector_create(
        access=owner,
        organization=world.org,
        name="generated",
        kind="webhook",
        url="http://127.0.0.1:8999/h",
        events=["decision.changed"],
    )
    stored = Connector.objects.get(pk=hook.pk).secret.ciphertext
    integrations.connector_update(access=owner, connector=hook, secret=replaced)
    _, moved = integrations.connector_update(access=owner, connector=hook, url="http://127.0.0.1:8998/hooks")
    gh, _ = integrations.connector_create(
        access=owner,
        organization=world.org,
        name="gh",
        kind="github",
        url="http://127.0.0.1:8999",
        config={"repo": "acme/copilot"},
        secret="ghp_token-created",
        events=["item.blocker_failed"],
    )
    integrations.connector_update(access=owner, connector=gh, secret="ghp_token-updated")
    integrations.connector_update(access=owner, connector=gh, url="http://127.0.0.1:8997", secret="ghp_token-moved")
    for connector in (hook, generated_hook, gh):
        integrations.connector_delete(access=owner, connector=connector)
    return [given, replaced, generated, moved, stored, "ghp_token-created", "ghp_token-updated", "ghp_token-moved"]


def connector_inbound_secret(world) -> list[str]:
    owner = world.access(world.owner)
    connector, _ = integrations.connector_create(
        access=owner,
        organization=world.org,
        name="snow",
        kind="servicenow",
        url="http://127.0.0.1:8999",
        config={"table": "incident", "auth": "bearer"},
        secret="snow-bearer",
        events=["item.blocker_failed"],
    )
    first = Connector.objects.get(pk=connector.pk).inbound_secret
    rotated = integrations.inbound_secret_rotate(access=owner, connector=connector)
    integrations.connector_delete(access=owner, connector=connector)
    return [first.reveal(), first.ciphertext, rotated, "snow-bearer"]


def api_token_secret_hash(world) -> list[str]:
    owner = world.access(world.owner)
    org_token, org_plain = orgs.api_token_create(access=owner, org=world.org, name="ci", scope=TokenScope.READ)
    mine, mine_plain = orgs.personal_token_create(
        access=world.access(world.member), org=world.org, name="me", scope=TokenScope.READ_WRITE
    )
    orgs.api_token_revoke(access=owner, token=org_token)
    orgs.api_token_revoke(access=world.access(world.member), token=mine)
    hashes = list(ApiToken.objects.values_list("secret_hash", flat=True))
    # The secret part is URL-safe base64, which may itself hold "_": split as the authenticator does.
    secret_parts = [plain.removeprefix(TOKEN_PREFIX).partition("_")[2] for plain in (org_plain, mine_plain)]
    assert all(len(part) >= 40 for part in secret_parts)
    return [org_plain, mine_plain, *secret_parts, *hashes]


def user_password(world) -> list[str]:
    newcomer = get_user_model().objects.create_user(username="newcomer", password="pw-newcomer-secret")
    orgs.membership_add(
        access=world.access(world.owner), org=world.org, username="newcomer", role="member", functions=[]
    )
    membership = world.org.memberships.get(user=newcomer)
    orgs.membership_update(access=world.access(world.owner), membership=membership, role="viewer", functions=[])
    orgs.membership_remove(access=world.access(world.owner), membership=membership)
    hashes = list(get_user_model().objects.values_list("password", flat=True))
    return ["pw-newcomer-secret", "pw-owner", "pw-member", *hashes]


def plan_tenant_keys(world) -> list[str]:
    """A noisy-neighbour plan's keys: given, replaced, removed (the trail names the tenants only)."""
    from apps.probes import services as probes
    from apps.probes.models import ProbePlan

    member = world.access(world.member)
    values = ["sk-tenant-a-secret", "sk-tenant-b-secret", "sk-tenant-a-new-secret"]
    tenants = [
        {"name": "a", "stages": [{"kind": "constant", "rate": 1, "duration": 10}]},
        {"name": "b", "burst": {"at": 2, "requests": 5, "over": 2}},
    ]
    plan = probes.probe_plan_create(
        access=member,
        endpoint=world.endpoint,
        name="neighbours",
        profile={"tenants": {"tenants": tenants}},
        tenant_keys={"a": values[0], "b": values[1]},
    )
    stored = ProbePlan.objects.get(pk=plan.pk).tenant_keys.ciphertext
    probes.probe_plan_update(access=member, plan=plan, tenant_keys=f"a: {values[2]}")
    probes.probe_plan_update(access=member, plan=plan, tenant_keys={})
    return [*values, stored]


def session_key(world) -> list[str]:
    client = api_client_for(world.owner)  # a logged-in session
    projects.project_update(access=world.access(world.owner), project=world.project, stage="pilot")
    return [client.session.session_key]


SECRETS = {
    "projects.Endpoint.api_key": endpoint_api_key,
    "integrations.Connector.secret": connector_secret,
    "integrations.Connector.inbound_secret": connector_inbound_secret,
    "orgs.ApiToken.secret_hash": api_token_secret_hash,
    "auth.User.password": user_password,
    "sessions.Session.session_key": session_key,
    "probes.ProbePlan.tenant_keys": plan_tenant_keys,
}


def test_every_field_that_may_hold_a_secret_is_classified():
    found = secret_looking_fields()

    assert found - SECRETS.keys() - NOT_SECRETS.keys() == set(), "classify the new field in this file"
    assert (SECRETS.keys() | NOT_SECRETS.keys()) - found == set(), "a classified field is gone: remove it here"


def trail_everywhere(client, world) -> dict[str, str]:
    """The trail as stored, as the API answers it and as the audit page shows it, to a viewer."""
    events = list(AuditEvent.objects.filter(organization=world.org).values("changes", "object_repr"))
    assert len(events) < 50, "the page below shows one page of 50"
    api = api_client_for(world.viewer).get("/api/v1/audit-events/?organization=acme&page_size=500")
    assert api.status_code == 200 and api.json()["count"] == len(events)
    client.force_login(world.viewer)
    page = client.get("/o/acme/audit/")
    assert page.status_code == 200
    return {"database": json.dumps(events), "api": api.content.decode(), "page": page.content.decode()}


@pytest.mark.parametrize("field", sorted(SECRETS))
def test_no_secret_value_reaches_the_audit_trail_stored_over_the_api_or_on_the_page(client, world, field):
    values = [v for v in SECRETS[field](world) if v]
    assert values

    for where, text in trail_everywhere(client, world).items():
        leaked = [v for v in values if v in text]
        assert leaked == [], f"{field} in clear in the audit trail ({where})"


def test_secret_changes_read_as_markers_only(client, world):
    for scenario in (endpoint_api_key, connector_secret, connector_inbound_secret):
        scenario(world)
    names = {"api_key", "secret", "inbound_secret"}

    pairs = [
        (e.action, name, value)
        for e in AuditEvent.objects.filter(organization=world.org)
        for name, change in e.changes.items()
        if name in names
        for value in change
    ]

    assert {value for _, _, value in pairs} - {None} <= SECRET_MARKERS
    assert {value for _, _, value in pairs} >= {"(set)", "(changed)", "(removed)", "(dropped: origin changed)"}
    client.force_login(world.viewer)
    page = client.get("/o/acme/audit/").content.decode()
    assert "<b>secret</b>: ∅ → (set)" in page and "<b>api_key</b>: (set) → (changed)" in page


def test_a_secret_written_straight_into_an_audit_event_is_stored_as_set(world):
    from apps.core.services import audit_record

    event = audit_record(
        access=world.access(world.owner),
        organization_id=world.org.pk,
        action="test.raw",
        obj=world.project,
        changes={"webhook_secret": [None, "whsec_raw"], "api_key": "sk-raw", "max_tokens": [1, 2]},
    )

    assert AuditEvent.objects.get(pk=event.pk).changes == {
        "webhook_secret": [None, "(set)"],
        "api_key": "(set)",
        "max_tokens": [1, 2],
    }


def test_the_migration_rewrites_secrets_already_in_the_trail_as_set(world):
    import importlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    migration = importlib.import_module("apps.core.migrations.0002_redact_secrets_in_audit_trail")
    leaked = AuditEvent.objects.create(
        organization=world.org,
        actor_label="owner",
        action="connector.create",
        object_type="integrations.connector",
        object_id="1",
        object_repr="hook",
        changes={"secret": [None, "whsec_leaked"], "name": [None, "hook"]},
    )
    replaced = AuditEvent.objects.create(
        organization=world.org,
        actor_label="owner",
        action="connector.update",
        object_type="integrations.connector",
        object_id="1",
        object_repr="hook",
        changes={"secret": ["(set)", "(replaced)"]},
    )
    state = MigrationExecutor(connection).loader.project_state(("core", "0002_redact_secrets_in_audit_trail"))

    migration.redact(state.apps, None)

    assert AuditEvent.objects.get(pk=leaked.pk).changes == {"secret": [None, "(set)"], "name": [None, "hook"]}
    assert AuditEvent.objects.get(pk=replaced.pk).changes == {"secret": ["(set)", "(replaced)"]}
