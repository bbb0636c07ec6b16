"""The cost model in the app: the per-org catalog, traffic profiles, projections from a real probe
run, and the projection feeding the go/no-go."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.costs import services
from apps.costs.models import Price, TrafficProfile
from apps.costs.services import cost_for
from apps.orgs import services as org_services
from apps.orgs.models import Membership, Role
from apps.probes import services as probes
from apps.probes.execution import shard_execute
from apps.probes.selectors import latest_runs
from apps.probes.verdict import verdict_for
from apps.projects import services as projects
from apps.reports.evaluation import refresh_project
from apps.signoffs import services as signoffs
from tests.conftest import api_client_for, make_user

TRAFFIC = {
    "requests_per_day": 200_000,
    "input_tokens_per_request": 400,
    "output_tokens_per_request": 8,
    "peak_to_average": 3.0,
    "active_hours_per_day": 14,
    "active_start_hour": 7,
}


@pytest.fixture
def measured(world, simulator):
    """The project's endpoint on the simulator, probed once (the worker's job done in-process)."""
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(access=owner, endpoint=world.endpoint, base_url=simulator.base_url)
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 3}]},
        slo={"ttft_p95_ms": 5000},
    )
    for _attempt in range(3):
        # A client saturated by a busy machine measured nothing the projection may use; the product
        # re-runs such a run by itself (READINESS_PROBE_SATURATED_RERUNS), and so does this fixture.
        run = probes.probe_run_start(access=owner, plan=plan)
        for shard in run.shards.all():
            shard_execute(shard_id=shard.pk, org_id=world.org.pk)
        run.refresh_from_db()
        if verdict_for(run).evidence:
            return world
    pytest.fail(f"three runs in a row were not evidence: {verdict_for(run).label}")


def test_each_org_gets_its_own_catalog_with_sources_and_dates_when_it_is_created(world):
    # Seeded by organization_create itself (a signal), never by a page that reads the prices.
    prices = Price.objects.filter(organization=world.org)
    count = prices.count()
    services.ensure_catalog(world.org)  # idempotent, as `migrate` calls it for every org
    assert prices.count() == count
    assert prices.filter(kind="gpu").count() >= 8 and prices.filter(kind="api").count() >= 7
    assert all(p.source and p.as_of for p in prices)
    assert Price.objects.filter(organization=world.other_org).count() == count


def test_a_price_edit_is_checked_and_audited(world):
    services.ensure_catalog(world.org)
    l4 = Price.objects.get(organization=world.org, name="NVIDIA L4")
    with pytest.raises(ApplicationError) as exc:
        services.price_update(access=world.access(world.member), price=l4, usd_per_gpu_hour=-1)
    assert "usd_per_gpu_hour" in exc.value.detail
    with pytest.raises(ApplicationError) as exc:
        services.price_update(access=world.access(world.member), price=l4, as_of=timezone.localdate() + timedelta(1))
    assert "as_of" in exc.value.detail
    services.price_update(
        access=world.access(world.member),
        price=l4,
        usd_per_gpu_hour="0.65",
        as_of=timezone.localdate(),
        source="GCP pricing page, read today",
    )
    l4.refresh_from_db()
    assert float(l4.usd_per_gpu_hour) == 0.65
    with pytest.raises(ApplicationError) as exc:
        services.price_update(access=world.access(world.viewer), price=l4, usd_per_gpu_hour="0.1")
    assert exc.value.status == 403


def test_the_prices_api_is_tenant_scoped_and_flags_what_is_stale(client, world):
    services.ensure_catalog(world.org)
    services.ensure_catalog(world.other_org)
    theirs = Price.objects.filter(organization=world.other_org).first()
    ours = api_client_for(world.member)
    assert ours.patch(f"/api/v1/prices/{theirs.pk}/", {"source": "x"}, format="json").status_code == 404
    names = {p["name"] for p in ours.get("/api/v1/prices/?page_size=100").json()["results"]}
    assert "NVIDIA L4" in names and len(names) == Price.objects.filter(organization=world.org).count()
    client.force_login(world.member)
    page = client.get("/o/acme/prices/").content.decode()
    assert "stale" in page  # the shipped prices are from 2024-2025


def test_a_projection_from_a_real_run_names_the_cheapest_option_that_meets_the_slos(measured):
    world = measured
    services.traffic_save(access=world.access(world.owner), project=world.project, **TRAFFIC)
    cost = cost_for(world.project, latest_runs(world.project))
    options = {o["key"]: o for o in cost["options"]}
    assert {"always_on", "autoscaled", "business_hours"} <= set(options)
    assert any(k.startswith("hosted") for k in options)
    cheapest = options[cost["cheapest"]]
    assert cheapest["meets_slo"] is True
    assert cost["projected_monthly_usd"] == round(cheapest["usd_per_month"], 2)
    assert all(o["usd_per_month"] >= cheapest["usd_per_month"] for o in options.values() if o["meets_slo"])
    assert options["always_on"]["usd_per_month"] >= cheapest["usd_per_month"]
    assert cost["saving_vs_always_on_usd"] == pytest.approx(
        options["always_on"]["usd_per_month"] - cheapest["usd_per_month"], abs=0.01
    )
    assert cost["cost_per_1m_output_tokens_usd"] > 0 and cost["stale_prices"]


def test_the_projection_feeds_the_budget_rule_and_the_decision(measured):
    world = measured
    owner = world.access(world.owner)
    services.traffic_save(access=owner, project=world.project, **TRAFFIC)
    cheapest = cost_for(world.project, latest_runs(world.project))["projected_monthly_usd"]
    projects.project_update(access=owner, project=world.project, monthly_budget_usd=round(cheapest * 2, 2))
    assert "over_budget" not in {r.code for r in refresh_project(world.project).reasons}
    projects.project_update(access=owner, project=world.project, monthly_budget_usd=round(cheapest / 2, 2))
    reasons = {r.code: r.message for r in refresh_project(world.project).reasons}
    assert "over the budget" in reasons["over_budget"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"peak_to_average": 0.5}, "peak_to_average"),
        ({"active_hours_per_day": 30}, "active_hours_per_day"),
        ({"active_start_hour": 20, "active_hours_per_day": 10}, "fit inside one day"),
    ],
)
def test_an_inconsistent_traffic_profile_is_refused_with_the_reason(world, fields, message):
    with pytest.raises(ApplicationError) as exc:
        services.traffic_save(access=world.access(world.owner), project=world.project, **{**TRAFFIC, **fields})
    assert message in exc.value.message
    assert not TrafficProfile.objects.filter(project=world.project).exists()  # nothing half-saved


def test_the_cost_page_and_api_show_the_options_and_take_the_traffic(client, measured):
    world = measured
    client.force_login(world.member)
    form = {
        **TRAFFIC,
        "active_days_per_month": 30.4,
        "min_replicas": 1,
        "scale_down_delay_s": 600,
        "scale_up_lead_s": 0,
        "business_hours_per_day": 12,
        "business_days_per_month": 22,
        "business_start_hour": 7,
        "spot_headroom_replicas": 1,
    }
    reply = client.post("/o/acme/projects/support-copilot/cost/", form)
    assert reply.status_code == 302
    page = client.get("/o/acme/projects/support-copilot/cost/").content.decode()
    assert 'data-testid="cost-options"' in page and "Cheapest option that meets the SLOs" in page
    api = api_client_for(world.viewer)
    body = api.get(f"/api/v1/projects/{world.project.pk}/cost/").json()
    assert body["cost"]["cheapest"] and body["cost"]["options"]
    assert api.put(f"/api/v1/projects/{world.project.pk}/traffic/", TRAFFIC, format="json").status_code == 403
    member = api_client_for(world.member)
    changed = member.put(
        f"/api/v1/projects/{world.project.pk}/traffic/", {**TRAFFIC, "requests_per_day": 1000}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["requests_per_day"] == 1000
    assert api_client_for(world.outsider).get(f"/api/v1/projects/{world.project.pk}/cost/").status_code == 404
    assert date.fromisoformat(body["cost"]["stale_prices"][0]["as_of"]) < timezone.localdate()


USAGE_CSV = (
    "timestamp,user,tenant,input_tokens,output_tokens\n"
    + "".join(f"2026-11-02T09:00:{s:02d}Z,heavy,acme,300,40\n" for s in range(50))  # one user, 50 in a minute
    + "".join(f"2026-11-02T{10 + u // 60:02d}:{u % 60:02d}:00Z,user{u},globex,300,40\n" for u in range(500))
    + "not-a-time,x,acme,1,1\n"
    + "2026-11-02T12:00:00Z,y,acme,-5,1\n"
)


def test_a_usage_log_is_uploaded_analysed_and_applied_as_the_traffic(client, measured, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.costs.models import UsageLog

    settings.MEDIA_ROOT = tmp_path
    world = measured
    client.force_login(world.member)
    bad = client.post(
        "/o/acme/projects/support-copilot/usage-logs/", {"file": SimpleUploadedFile("usage.xlsx", b"x")}, follow=True
    )
    assert ".csv or .jsonl" in bad.content.decode() and not UsageLog.objects.exists()
    reply = client.post(
        "/o/acme/projects/support-copilot/usage-logs/", {"file": SimpleUploadedFile("usage.csv", USAGE_CSV.encode())}
    )
    assert reply.status_code == 302
    log = UsageLog.objects.get()
    assert log.status == "queued"
    services.usage_log_analyse(log.pk)  # the worker's job
    assert services.usage_log_analyse(log.pk) is None  # analysed once
    log.refresh_from_db()
    a = log.analysis
    assert (log.status, a["rows"], a["bad_rows"]["count"], a["users"]) == ("done", 550, 2, 501)
    assert [b["line"] for b in a["bad_rows"]["examples"]] == [552, 553]
    # One user's 50 questions in one minute is the busiest minute, not the 500 users spread over the day.
    assert a["per_minute"]["peak_requests_per_minute"] == 50 and a["burstiness"]["busiest_user"] == "heavy"
    assert a["capacity"]["replicas_for_peak_minute"] >= 1
    page = client.get(f"/o/acme/usage-logs/{log.pk}/").content.decode()
    assert "line 552" in page and "heavy" in page
    client.post(f"/o/acme/usage-logs/{log.pk}/apply/")
    profile = TrafficProfile.objects.get(project=world.project)
    assert profile.requests_per_day == 550 and profile.output_tokens_per_request == 40
    client.force_login(world.outsider)
    assert client.get(f"/o/acme/usage-logs/{log.pk}/").status_code == 404
    assert api_client_for(world.outsider).get(f"/api/v1/usage-logs/{log.pk}/").status_code == 404


def test_a_usage_log_that_cannot_be_read_fails_with_its_reason(world, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    log = services.usage_log_upload(
        access=world.access(world.owner),
        project=world.project,
        upload=SimpleUploadedFile("usage.csv.gz", b"not gzip at all"),
    )
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "failed" and log.error


def _analysed_log(world, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    log = services.usage_log_upload(
        access=world.access(world.owner),
        project=world.project,
        upload=SimpleUploadedFile("usage.csv", USAGE_CSV.encode()),
    )
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    return log


def test_a_replay_plan_sends_the_logs_busiest_hour_at_its_rates_and_runs(client, measured, settings, tmp_path):
    from apps.probes.models import ProbePlan

    world = measured
    log = _analysed_log(world, settings, tmp_path)
    hour = log.analysis["busiest_hour"]
    assert hour["from"] == "2026-11-02T09:00:00Z" and hour["requests_per_minute"][:2] == [50, 0]
    client.force_login(world.member)
    page = client.get(f"/o/acme/usage-logs/{log.pk}/").content.decode()
    assert 'data-testid="replay-form"' in page and "50 requests in 60 minutes" in page
    reply = client.post(
        f"/o/acme/usage-logs/{log.pk}/replay/",
        {"endpoint": world.endpoint.pk, "scale": "120", "seconds_per_minute": "0.1"},
    )
    plan = ProbePlan.objects.get(name="replay usage.csv x120")
    assert reply.status_code == 302 and reply["Location"] == f"/o/acme/plans/{plan.pk}/"
    stages = plan.profile["stages"]
    # Minute 0 held 50 requests: 50/60 per second x 120 = 100/s, for 0.1 s; then 59 idle minutes.
    assert stages[0] == {"kind": "poisson", "rate": 100.0, "duration": 0.1, "name": "minute m0"}
    assert len(stages) == 2 and stages[1]["duration"] == pytest.approx(5.9)
    assert (plan.prompt_tokens, plan.max_tokens) == (300, 40)  # the log's average sizes
    run = probes.probe_run_start(access=world.access(world.member), plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.summary["stages"][0]["requests"] > 0


def test_a_replay_over_the_api_is_idempotent_and_bad_input_is_refused_with_nothing_created(world, settings, tmp_path):
    from apps.probes.models import ProbePlan

    log = _analysed_log(world, settings, tmp_path)
    api = api_client_for(world.member)
    url = f"/api/v1/usage-logs/{log.pk}/replay/"
    body = {"endpoint": world.endpoint.pk, "scale": 2, "seconds_per_minute": 3}
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="replay-1")
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="replay-1")
    assert first.status_code == 201 and again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert ProbePlan.objects.filter(name__startswith="replay").count() == 1
    duplicate = api.post(url, body, format="json")  # no key: the name is taken, a clear refusal
    assert duplicate.status_code == 400 and "name" in duplicate.json()["error"]["detail"]
    for bad, field in (
        ({**body, "endpoint": world.other_endpoint.pk}, "endpoint"),
        ({**body, "scale": 0}, "scale"),
        ({**body, "seconds_per_minute": -1}, "seconds_per_minute"),
        ({**body, "oops": 1}, "oops"),
        ({**body, "seconds_per_minute": 100}, "profile"),
    ):
        reply = api.post(url, bad, format="json")
        assert reply.status_code == 400, (bad, reply.json())
        assert field in reply.json()["error"]["detail"], (bad, reply.json())
    assert ProbePlan.objects.filter(name__startswith="replay").count() == 1
    assert api_client_for(world.viewer).post(url, body, format="json").status_code == 403
    assert api_client_for(world.outsider).post(url, body, format="json").status_code == 404
    log.status = "queued"
    log.save()
    assert api.post(url, {**body, "scale": 3}, format="json").status_code == 409


@pytest.fixture
def import_dir(settings, tmp_path):
    """The server's import folder with one log for acme, one for globex, and traps."""
    root = tmp_path / "imports"
    (root / "acme" / "2026").mkdir(parents=True)
    (root / "globex").mkdir(parents=True)
    (root / "acme" / "2026" / "november.csv").write_text(USAGE_CSV)
    (root / "globex" / "secret.csv").write_text(USAGE_CSV)
    (root / "acme" / "notes.txt").write_text("not a log")
    (root / "acme" / "leak.csv").symlink_to(root / "globex" / "secret.csv")  # a link out of the folder
    settings.READINESS_USAGE_LOG_IMPORT_DIR = root
    settings.MEDIA_ROOT = tmp_path / "media"
    return root


def test_a_log_stored_on_the_server_is_listed_analysed_in_place_and_audited(client, world, import_dir):
    from apps.core.models import AuditEvent
    from apps.costs.models import UsageLog

    client.force_login(world.member)
    page = client.get("/o/acme/projects/support-copilot/cost/").content.decode()
    listed = page.split('data-testid="stored-logs"')[1].split("</form>")[0]
    assert "2026/november.csv" in listed and "leak.csv" not in listed and "notes.txt" not in listed
    assert "secret.csv" not in listed
    reply = client.post("/o/acme/projects/support-copilot/usage-logs/stored/", {"stored_name": "2026/november.csv"})
    assert reply.status_code == 302
    log = UsageLog.objects.get()
    assert (log.stored_name, log.name, bool(log.file)) == ("2026/november.csv", "november.csv", False)
    assert log.size_bytes == len(USAGE_CSV)
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "done" and log.analysis["rows"] == 550
    assert AuditEvent.objects.filter(action="usage_log.from_stored", organization=world.org).exists()
    api = api_client_for(world.member)
    names = [f["name"] for f in api.get(f"/api/v1/usage-logs/stored/?project={world.project.pk}").json()]
    assert names == ["2026/november.csv"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("../globex/secret.csv", "no absolute path, no '..'"),
        (None, "no absolute path, no '..'"),
        ("leak.csv", "outside your organization's folder"),
        ("secret.csv", "No stored log named"),
        ("notes.txt", "A usage log is one of"),
        ("", "Give either a file"),
    ],
)
def test_a_stored_name_outside_the_orgs_folder_is_refused_and_nothing_is_queued(world, import_dir, name, message):
    from apps.costs.models import UsageLog

    name = str(import_dir / "globex" / "secret.csv") if name is None else name  # an absolute path
    api = api_client_for(world.member)
    reply = api.post("/api/v1/usage-logs/", {"project": world.project.pk, "stored_name": name}, format="json")
    assert reply.status_code == 400 and message in str(reply.json()), reply.json()
    assert not UsageLog.objects.exists()


def test_the_stored_api_needs_both_or_neither_and_keeps_to_the_callers_projects(world, import_dir):
    api = api_client_for(world.member)
    both = api.post("/api/v1/usage-logs/", {"project": world.project.pk}, format="json")
    assert both.status_code == 400 and "either a file" in str(both.json())
    assert api.get("/api/v1/usage-logs/stored/").status_code == 400
    assert api.get(f"/api/v1/usage-logs/stored/?project={world.other_project.pk}").status_code == 404
    outsider_list = api_client_for(world.outsider).get(f"/api/v1/usage-logs/stored/?project={world.project.pk}")
    assert outsider_list.status_code == 404
    viewer = api_client_for(world.viewer).post(
        "/api/v1/usage-logs/", {"project": world.project.pk, "stored_name": "2026/november.csv"}, format="json"
    )
    assert viewer.status_code == 403
    outsider = api_client_for(world.outsider).post(
        "/api/v1/usage-logs/", {"project": world.project.pk, "stored_name": "2026/november.csv"}, format="json"
    )
    assert outsider.status_code == 400 and "project" in str(outsider.json())  # not one of theirs


def test_a_stored_log_that_vanished_before_its_analysis_fails_with_the_reason(world, import_dir):
    log = services.usage_log_from_stored(
        access=world.access(world.owner), project=world.project, name="2026/november.csv"
    )
    (import_dir / "acme" / "2026" / "november.csv").unlink()
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "failed" and "No stored log named '2026/november.csv'" in log.error


def test_the_traffic_of_a_project_without_one_is_a_404_in_the_error_shape(world):
    response = api_client_for(world.member).get(f"/api/v1/projects/{world.project.pk}/traffic/")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No expected traffic is set for this project yet."


def test_renaming_a_price_to_a_name_the_catalog_has_is_a_clear_400_not_a_500(world):
    """What must survive: both prices. Found by the API fuzzer: the unique name used to be a 500."""
    api = api_client_for(world.owner)
    first, second = api.get("/api/v1/prices/?kind=api").json()["results"][:2]
    reply = api.patch(f"/api/v1/prices/{second['id']}/", {"name": first["name"]}, format="json")
    assert reply.status_code == 400 and "name" in reply.json()["error"]["detail"]
    assert api.get(f"/api/v1/prices/{second['id']}/").json()["name"] == second["name"]


def test_the_stored_logs_listing_is_documented_as_the_list_it_answers(world):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = schema["paths"]["/api/v1/usage-logs/stored/"]["get"]["responses"]["200"]["content"]
    assert documented["application/json"]["schema"]["type"] == "array"
    answer = api_client_for(world.member).get(f"/api/v1/usage-logs/stored/?project={world.project.pk}")
    assert answer.status_code == 200 and isinstance(answer.json(), list)


def test_a_finance_approval_given_over_budget_stays_current_when_the_decision_is_refreshed(measured):
    """The approval fingerprints the cost position the decision weighs (the projection against the
    budget): approving while over budget is what was approved, so the next evaluation finds no change."""
    world = measured
    owner = world.access(world.owner)
    services.traffic_save(access=owner, project=world.project, **TRAFFIC)
    cheapest = cost_for(world.project, latest_runs(world.project))["projected_monthly_usd"]
    projects.project_update(access=owner, project=world.project, monthly_budget_usd=round(cheapest / 2, 2))
    make_user("fin")
    org_services.membership_add(access=owner, org=world.org, username="fin", role=Role.MEMBER, functions=["finance"])
    signoffs.policy_update(access=owner, org=world.org, gates=[{"function": "finance", "required": 1}])
    fin = world.access(Membership.objects.get(user__username="fin").user)
    approval = signoffs.signoff_decide(access=fin, project=world.project, function="finance", verdict="approve")
    assert approval.evidence["cost"] == {"budget_usd": round(cheapest / 2, 2), "over_budget": True, "projected": True}
    refresh_project(world.project)
    approval.refresh_from_db()
    assert approval.stale_at is None, approval.stale_reason
    # Going further over budget later is not a change of position: still over, still approved;
    # a cut budget below the projection after an approval within it is (covered by the material tests).
