"""Noisy-neighbour plans in the app: the profile and its limits, the tenant keys (encrypted, never
shown, never sent to another origin), and real runs on a real worker against the simulator, where
one shard per tenant shares one schedule. The run's verdict comes from the quiet tenants (leaky with
no isolation, isolated with fair queueing), and the "Tenants are isolated under a noisy neighbour"
checklist item reads it."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.urls import reverse

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.probes import plans, services
from apps.probes.models import ProbeRun
from apps.probes.selectors import records_by_shard
from apps.probes.tenant_keys import stored_tenant_keys
from apps.probes.verdict import MET, MISSED, NOT_EVIDENCE, TENANTS, verdict_for
from apps.projects import services as project_services
from apps.simulator.scenarios import scenario
from tests.conftest import api_client_for, wait_for
from tests.readiness_helpers import decided

QUIET = {"name": "quiet", "stages": [{"kind": "constant", "rate": 10, "duration": 5}]}
NOISY = {"name": "noisy", "burst": {"at": 2.0, "requests": 48, "over": 1.0}}
# The simulator's fair queue makes a quiet request wait for about one request (~2-3x its baseline);
# no isolation makes it wait for the whole burst (~35x): 400 % lies well between.
PROFILE = {"tenants": {"tenants": [QUIET, NOISY], "isolation": {"ttft_increase_pct": 400, "error_rate_increase": 0.02}}}


def make_plan(world, endpoint=None, **fields):
    values = {"name": "neighbours", "profile": PROFILE, "max_tokens": 8, "slo": {"ttft_p95_ms": 1000}, **fields}
    return services.probe_plan_create(access=world.access(world.owner), endpoint=endpoint or world.endpoint, **values)


# --- the profile ---------------------------------------------------------------------------------


def test_a_tenants_profile_is_stored_as_given_and_a_run_has_one_shard_per_tenant(world):
    plan = make_plan(world)
    assert plan.profile == PROFILE
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    assert run.shard_count == 2 and run.planned_duration_s == 5
    # Each shard sends its own tenant's whole schedule: nothing is split between shards.
    for index, (name, sends) in enumerate((("quiet", 50), ("noisy", 48))):
        config, driver = plans.engine_config(
            run.config, api_key="sk-endpoint", allow_private=True, shard_index=index, shard_count=2
        )
        assert (config.shard_index, config.shard_count) == (0, 1) and driver is not None
        assert ("X-Tenant", name) in config.headers and config.api_key == "sk-endpoint"
        assert round(sum(s.duration * s.rate for s in config.stages)) == sends
    # The run's request budget is split in proportion to what each tenant sends.
    budget = run.config["max_requests"]
    shares = [plans.tenant_share(budget, plans.tenant_plan(PROFILE["tenants"]), i) for i in (0, 1)]
    assert sum(shares) <= budget and shares[0] > shares[1] > 0


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"profile": {"tenants": {"tenants": [QUIET]}}}, "profile", "2 to 20 tenants"),
        ({"profile": {"tenants": {"tenants": [QUIET, {**QUIET, "name": "b"}]}}}, "profile", "exactly one"),
        ({"profile": {"tenants": {"tenants": [{**QUIET, "api_key": "sk-x"}, NOISY]}}}, "profile", "encrypted"),
        ({"profile": {"tenants": {"tenants": [QUIET, NOISY], "extra": 1}}}, "profile", "unknown field"),
        ({"profile": {"tenants": []}}, "profile", "an object"),
        ({"parallelism": 2}, "parallelism", "one shard per tenant"),
        ({"warmup_s": 1}, "warmup_s", "no warm-up"),
        ({"tenant_keys": {"stranger": "sk-1"}}, "tenant_keys", "1 of the keys name no tenant"),
        (
            {"profile": {"tenants": {**PROFILE["tenants"], "isolation": {"ttft_increase_pct": 1e9}}}},
            "profile",
            "at most 1000",
        ),
        (
            {"profile": {"tenants": {**PROFILE["tenants"], "isolation": {"ttft_increase_pct": "50"}}}},
            "profile",
            "above 0",
        ),
        (
            {"profile": {"tenants": {**PROFILE["tenants"], "isolation": {"ttft_increase_pct": float("nan")}}}},
            "profile",
            "above 0",
        ),
        (
            {"profile": {"tenants": {**PROFILE["tenants"], "isolation": {"error_rate_increase": -0.1}}}},
            "profile",
            "fraction",
        ),
        (
            {"profile": {"tenants": {"tenants": [QUIET, {**NOISY, "burst": {"at": 0, "requests": 48, "over": 1}}]}}},
            "profile",
            "baseline",
        ),
        (
            {"profile": {"tenants": {"tenants": [QUIET, {**NOISY, "burst": {"at": 2, "requests": 5, "over": 1}}]}}},
            "profile",
            "not noisy",
        ),
        (
            {
                "profile": {
                    "tenants": {
                        "tenants": [{**QUIET, "stages": [{"kind": "constant", "rate": 10, "duration": 2.5}]}, NOISY]
                    }
                }
            },
            "profile",
            "until the burst ends",
        ),
        ({"profile": {"tenants": {**PROFILE["tenants"], "header": "X-T\r\nEvil: 1"}}}, "profile", "not an HTTP header"),
        ({"profile": {"tenants": {**PROFILE["tenants"], "header": "Authorization"}}}, "profile", "already sets"),
        ({"profile": {"tenants": {"tenants": [{**QUIET, "name": "équipe"}, NOISY]}}}, "profile", "cannot be sent"),
        ({"profile": {"tenants": {"tenants": [{**QUIET, "header": "a\r\nb"}, NOISY]}}}, "profile", "line break"),
        ({"profile": {"tenants": {"tenants": [{**QUIET, "name": "x" * 101}, NOISY]}}}, "profile", "at most 100"),
        ({"tenant_keys": {"quiet": "sk-1\r\nX-Evil: 1"}}, "tenant_keys", "line break"),
        ({"tenant_keys": "quiet sk-1"}, "tenant_keys", "name: key"),
    ],
)
def test_a_bad_tenants_plan_is_refused_at_its_field_and_nothing_is_saved(world, change, field, words):
    with pytest.raises(ApplicationError) as info:
        make_plan(world, **change)
    assert field in info.value.detail and words in " ".join(info.value.detail[field])
    assert not world.endpoint.probe_plans.exists()


def test_tenants_beyond_the_orgs_limits_are_refused(world):
    services.probe_limits_update(access=world.access(world.owner), org=world.org, max_rate=50)
    with pytest.raises(ApplicationError) as info:  # each tenant is within it, but 10/s + 48/s at once is not
        make_plan(world)
    assert "together may send 58 requests/s" in info.value.message
    services.probe_limits_update(access=world.access(world.owner), org=world.org, max_rate=1000)
    slow = [{"kind": "constant", "rate": 1, "duration": 5}]
    many = {"tenants": {"tenants": [NOISY] + [{"name": f"t{i}", "stages": slow} for i in range(9)]}}
    with pytest.raises(ApplicationError) as info:
        make_plan(world, profile=many)
    assert "max parallelism of 8" in info.value.message


def test_tenant_keys_only_belong_to_a_tenants_plan(world):
    with pytest.raises(ApplicationError) as info:
        make_plan(world, profile={"stages": [{"kind": "constant", "rate": 1, "duration": 5}]}, tenant_keys={"a": "k"})
    assert "tenant_keys" in info.value.detail


# --- the keys --------------------------------------------------------------------------------------


def test_tenant_keys_are_stored_encrypted_audited_by_name_and_reach_only_their_tenant(world):
    plan = make_plan(world, tenant_keys="quiet: sk-quiet-secret\nnoisy: sk-noisy-secret")
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_keys FROM probes_probeplan WHERE id = %s", [plan.pk])
        raw = cursor.fetchone()[0]
    assert "sk-quiet-secret" not in raw and "quiet" not in raw
    event = AuditEvent.objects.get(action="probe_plan.create", object_id=str(plan.pk))
    assert event.changes["tenant_keys"] == [[], ["noisy", "quiet"]]
    assert "secret" not in json.dumps(event.changes)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    keys = stored_tenant_keys(plan, for_url=run.config["base_url"])
    config, _ = plans.engine_config(
        run.config, api_key="sk-endpoint", allow_private=True, shard_index=1, shard_count=2, tenant_keys=keys
    )
    assert config.api_key == "sk-noisy-secret"
    # An update without keys keeps them; an empty mapping removes them.
    services.probe_plan_update(access=world.access(world.owner), plan=plan, name="renamed")
    assert set(stored_tenant_keys(plan)) == {"quiet", "noisy"}
    services.probe_plan_update(access=world.access(world.owner), plan=plan, tenant_keys={})
    assert stored_tenant_keys(plan) == {} and plan.tenant_keys is None


def test_a_member_who_moves_the_endpoint_to_their_own_server_does_not_get_the_tenant_keys(world):
    plan = make_plan(world, tenant_keys={"quiet": "sk-quiet-secret"})
    project_services.endpoint_update(
        access=world.access(world.member), endpoint=world.endpoint, base_url="https://attacker.example/v1"
    )
    plan.refresh_from_db()
    run = services.probe_run_start(access=world.access(world.member), plan=plan)
    assert run.config["base_url"] == "https://attacker.example/v1"
    assert stored_tenant_keys(plan, for_url=run.config["base_url"]) == {}


def test_the_api_takes_tenant_keys_and_never_returns_them(world, tokens):
    api = api_client_for(token=tokens["read_write"])
    body = {
        "endpoint": world.endpoint.pk,
        "name": "neighbours",
        "profile": PROFILE,
        "max_tokens": 8,
        "tenant_keys": {"quiet": "sk-quiet-secret"},
    }
    created = api.post("/api/v1/probe-plans/", body, format="json")
    assert created.status_code == 201, created.content
    assert "sk-quiet-secret" not in created.content.decode() and created.json()["tenant_keys_set"] == ["quiet"]
    read = api_client_for(token=tokens["read"]).get(f"/api/v1/probe-plans/{created.json()['id']}/")
    assert "sk-quiet-secret" not in read.content.decode() and 'tenant_keys"' not in read.content.decode()
    bad = api.post("/api/v1/probe-plans/", {**body, "name": "b", "tenant_keys": {"nobody": "k"}}, format="json")
    assert bad.status_code == 400 and "tenant_keys" in bad.json()["error"]["detail"]
    # Another organization's token cannot read the plan at all.
    outsider = api_client_for(world.outsider)
    assert outsider.get(f"/api/v1/probe-plans/{created.json()['id']}/").status_code == 404


# --- real runs ---------------------------------------------------------------------------------------


def run_on_worker(world, sim, *, tries: int = 3) -> ProbeRun:
    """Run the plan on the real worker (one process per tenant); a run the busy test machine made
    inconclusive (a lagging client, a late shard) is run again, as a person would."""
    endpoint = project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=sim.base_url
    )
    plan = endpoint.probe_plans.first() or make_plan(world, endpoint)
    for _ in range(tries):
        run = services.probe_run_start(access=world.access(world.owner), plan=plan)
        wait_for(lambda run=run: not ProbeRun.objects.get(pk=run.pk).is_active, timeout=90)
        run.refresh_from_db()
        assert run.status == "succeeded", run.error_message
        if verdict_for(run).outcome != NOT_EVIDENCE:
            return run
    pytest.fail(f"{tries} runs were inconclusive: {run.summary['tenants']['reasons']}")


def tenancy_item(world):
    template = ChecklistTemplate.objects.get(organization=world.org, key="tenancy", shipped=True)
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    return checklists.current_responses(checklist).get(item__key="ten.isolation")


@pytest.mark.worker
def test_on_a_shared_queue_the_run_is_leaky_its_item_fails_and_the_page_shows_each_tenant(
    world, started, probe_worker, client
):
    item = tenancy_item(world)
    run = run_on_worker(world, started(scenario("tenants-fifo")))
    analysis = run.summary["tenants"]
    verdict = verdict_for(run)
    assert (verdict.kind, verdict.outcome, analysis["verdict"]) == (TENANTS, MISSED, "leaky"), analysis["reasons"]
    assert analysis["quiet"][0]["ttft_ratio_during"] > 5
    # Each shard's records are its own tenant's: 48 for the burst, about 50 for the quiet one.
    parts = records_by_shard(run)
    assert len(parts[1]) == 48 and 40 <= len(parts[0]) <= 55
    assert {t["name"]: t["requests"] for t in analysis["tenants"]} == {"quiet": len(parts[0]), "noisy": 48}
    decided(world.project)
    item.refresh_from_db()
    assert item.status == "fail" and item.figure == 0 and f"/runs/{run.pk}/" in item.evidence_url
    client.force_login(world.viewer)
    page = client.get(reverse("run-detail", kwargs={"org_slug": "acme", "pk": run.pk})).content.decode()
    for marker in ('data-testid="tenant-table"', 'data-testid="tenant-phases"', 'id="fig-fairness"', "leaky"):
        assert marker in page
    assert 'id="fig-tenant-latency"' in page
    # Another organization's member gets a 404, not the tenants.
    client.force_login(world.outsider)
    assert client.get(reverse("run-detail", kwargs={"org_slug": "acme", "pk": run.pk})).status_code == 404


@pytest.mark.worker
def test_with_fair_queueing_the_run_is_isolated_and_its_item_passes(world, started, probe_worker):
    item = tenancy_item(world)
    run = run_on_worker(world, started(scenario("tenants-fair")))
    assert verdict_for(run).outcome == MET, run.summary["tenants"]["reasons"]
    assert run.summary["tenants"]["isolated"] == 1 and run.summary["tenants"]["jain_index"] > 0.9
    decided(world.project)
    item.refresh_from_db()
    assert item.status == "pass" and item.figure == 1
    # The report shows the run's fairness chart and a line for the plan.
    from apps.reports.services import report_create

    report = report_create(access=world.access(world.owner), project=world.project)
    assert "fairness" in report.snapshot["figures"]
    [line] = [p["tenants"] for p in report.snapshot["probes"] if p["tenants"]]
    assert line["verdict"] == "isolated" and line["noisy"] == "noisy"


# --- the pages -----------------------------------------------------------------------------------------

FORM = {
    "name": "neighbours",
    "profile": json.dumps(PROFILE),
    "max_tokens": 8,
    "prompt_tokens": 256,
    "warmup_s": 0,
    "cooldown_s": 0,
    "parallelism": 1,
    "request_timeout_s": 60,
    "seed": 0,
    "regression_threshold_pct": 20,
}


def test_the_plan_form_takes_tenant_keys_and_the_plan_page_names_them_without_showing_them(client, world):
    client.force_login(world.member)
    url = reverse("plan-create", kwargs={"org_slug": "acme", "endpoint_pk": world.endpoint.pk})
    # A key for a tenant the profile does not have: refused at its field, everything typed kept.
    refused = client.post(url, {**FORM, "tenant_keys": "stranger: sk-typed-secret"})
    form = refused.context["form"]
    assert "name no tenant" in form.errors["tenant_keys"][0] and form["profile"].value() == FORM["profile"]
    assert "sk-typed-secret" not in refused.content.decode()  # never sent back, not even to its author
    # Another field refused: the keys typed are not shown again, and the field says they were not saved.
    other = client.post(url, {**FORM, "parallelism": 2, "tenant_keys": "quiet: sk-typed-secret"})
    assert "sk-typed-secret" not in other.content.decode()
    assert other.context["form"].errors["tenant_keys"] == ["Not saved: enter the keys again."]
    response = client.post(url, {**FORM, "tenant_keys": "quiet: sk-quiet-secret"})
    assert response.status_code == 302
    plan = world.endpoint.probe_plans.get()
    assert stored_tenant_keys(plan) == {"quiet": "sk-quiet-secret"}
    client.force_login(world.viewer)
    page = client.get(reverse("plan-detail", kwargs={"org_slug": "acme", "pk": plan.pk})).content.decode()
    assert 'data-testid="plan-tenants"' in page and "quiet" in page and "sk-quiet-secret" not in page
    # The edit form starts empty (keys are never shown again) and an empty field keeps them.
    client.force_login(world.member)
    edit = reverse("plan-edit", kwargs={"org_slug": "acme", "pk": plan.pk})
    assert "sk-quiet-secret" not in client.get(edit).content.decode()
    assert client.post(edit, {**FORM, "name": "renamed", "tenant_keys": ""}).status_code == 302
    plan.refresh_from_db()
    assert plan.name == "renamed" and stored_tenant_keys(plan) == {"quiet": "sk-quiet-secret"}
    assert client.post(edit, {**FORM, "name": "renamed", "clear_tenant_keys": "on"}).status_code == 302
    plan.refresh_from_db()
    assert stored_tenant_keys(plan) == {}
    # Another organization's member reaches neither page.
    client.force_login(world.outsider)
    assert client.get(edit).status_code == 404
    assert client.get(reverse("plan-detail", kwargs={"org_slug": "acme", "pk": plan.pk})).status_code == 404


def test_the_demo_has_a_noisy_neighbour_plan_that_the_workers_can_run(world):
    from apps.demo.management.commands.seed_demo import demo_load

    profile = demo_load(cpus=2)["tenants"]
    plan = make_plan(world, profile=profile, name="demo")
    tenants = plans.tenant_plan(profile["tenants"])
    assert plan.profile == profile and len(tenants.tenants) == 2  # the probe worker runs two processes
    assert plans.offered_load(profile)["peak_rate"] == 3 + 8  # the team's 3/s and the script's 8/s at once


def test_a_tenant_may_ask_with_its_own_sizes_and_the_days_token_budget_reserves_the_largest(world):
    own = {
        "tenants": {
            "tenants": [
                {**QUIET, "prompt_tokens": 900, "max_tokens": 300},
                NOISY,
            ]
        }
    }
    plan = make_plan(world, profile=own)  # the plan's own max_tokens is 8
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    assert plans.max_tokens_per_request(run.config) == 300
    quiet, _ = plans.engine_config(run.config, api_key=None, allow_private=True, shard_index=0, shard_count=2)
    noisy, _ = plans.engine_config(run.config, api_key=None, allow_private=True, shard_index=1, shard_count=2)
    assert (quiet.max_tokens, noisy.max_tokens) == (300, 8)
    assert quiet.prompts.prompts[0].approx_tokens == 900 and noisy.prompts.prompts[0].approx_tokens == 256
    # What a queued run reserves of the day counts its tenants' largest requests.
    assert services.usage_today(world.org.pk)[1] == run.config["max_requests"] * 300
    for field, value in (("max_tokens", 10**9), ("prompt_tokens", 10**9), ("max_tokens", 0), ("prompt_tokens", 1.5)):
        bad = {"tenants": {"tenants": [{**QUIET, field: value}, NOISY]}}
        with pytest.raises(ApplicationError) as info:
            make_plan(world, profile=bad, name=f"bad {field} {value}")
        assert field in info.value.message, info.value.message


def test_two_noisy_neighbour_runs_compare_tenant_by_tenant(world, tokens):
    from django.utils import timezone

    plan = make_plan(world)

    def finished(ratio: float, jain: float) -> ProbeRun:
        run = services.probe_run_start(access=world.access(world.owner), plan=plan)
        tenants = [
            {"name": "quiet", "ttft_ms": {"p95": 40 * ratio}, "error_rate": 0.0},
            {"name": "noisy", "ttft_ms": {"p95": 50.0}, "error_rate": 0.1},
        ]
        analysis = {"jain_index": jain, "tenants": tenants, "quiet": [{"name": "quiet", "ttft_ratio_during": ratio}]}
        ProbeRun.objects.filter(pk=run.pk).update(
            status="succeeded", finished_at=timezone.now(), summary={"overall": {"requests": 98}, "tenants": analysis}
        )
        return run

    before, after = finished(1.2, 0.98), finished(30.0, 0.6)
    body = api_client_for(token=tokens["read"]).get(f"/api/v1/probe-runs/{after.pk}/compare/?with={before.pk}").json()
    rows = {r["figure"]: r for r in body["rows"]}
    assert rows["quiet: TTFT p95 during the burst ÷ before"]["verdict"] == "worse"
    assert rows["Jain's fairness index"]["verdict"] == "worse" and rows["quiet: TTFT p95 (ms)"]["b"] == 1200.0
    assert rows["noisy: error rate"]["verdict"] is None  # unchanged


def test_tenants_in_flight_add_up_against_the_orgs_max_concurrency(world):
    services.probe_limits_update(access=world.access(world.owner), org=world.org, max_concurrency=10)
    users = [{"kind": "concurrent", "concurrency": 6, "duration": 5}]
    profile = {"tenants": {"tenants": [{"name": "a", "stages": users}, {"name": "b", "stages": users}, NOISY]}}
    with pytest.raises(ApplicationError) as info:
        make_plan(world, profile=profile)
    assert "up to 12 requests in flight" in info.value.message and "max concurrency of 10" in info.value.message


def test_a_closed_loop_tenant_gets_an_even_share_of_the_budget_never_none():
    users = [{"kind": "concurrent", "concurrency": 2, "duration": 5}]
    plan = plans.tenant_plan({"tenants": [{"name": "a", "stages": users}, NOISY]})
    assert [plans.tenant_share(101, plan, i) for i in (0, 1)] == [51, 50]


@pytest.mark.parametrize(
    "text, keys",
    [
        ("a: sk-1", {"a": "sk-1"}),
        ("a:sk-1", {"a": "sk-1"}),
        ("org:42: sk-a:b", {"org:42": "sk-a:b"}),  # a name with a colon, a key with one
        ("a: sk-1\n\n  b :  sk-2  ", {"a": "sk-1", "b": "sk-2"}),
    ],
)
def test_tenant_keys_are_read_one_per_line_as_name_colon_key(text, keys):
    assert plans.parse_tenant_keys(text) == keys


def test_a_run_that_cannot_be_summarized_fails_and_does_not_hold_up_other_organizations(world):
    from datetime import timedelta

    from django.utils import timezone

    from apps.probes.models import ProbeShard

    stale = timezone.now() - timedelta(hours=1)
    runs = []
    for access, endpoint in ((world.owner, world.endpoint), (world.outsider, world.other_endpoint)):
        plan = services.probe_plan_create(
            access=world.access(access),
            endpoint=endpoint,
            name="steady",
            profile={"stages": [{"kind": "constant", "rate": 1, "duration": 5}]},
        )
        runs.append(services.probe_run_start(access=world.access(access), plan=plan))
    poison, other = runs
    # A run stored by an earlier version, with an SLO field this one does not know.
    ProbeRun.objects.filter(pk=poison.pk).update(config={**poison.config, "slo": {"bogus": 1}})
    ProbeShard.objects.filter(run__in=runs).update(status="done", finished_at=stale)
    ProbeRun.objects.filter(pk__in=[r.pk for r in runs]).update(status="running", updated_at=stale)
    services.probe_runs_reap()
    poison.refresh_from_db()
    other.refresh_from_db()
    assert poison.status == "failed" and "could not be summarized" in poison.error_message
    assert other.status == "succeeded"
