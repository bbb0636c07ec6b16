"""Plans against strict servers: the preflight, what it drops and why, the diagnosis of a run that
cannot start, and the endpoint's compatibility check (page and API), with tenancy.

What must survive: a run against a server that refuses everything sends one preflight (a few
requests at most), never the load, and ends `failed` with the server's answer on the page and in
the API; the stored key never appears in any of it.
"""

import pytest
from django.urls import reverse

from apps.probes import services
from apps.probes.engine.openai import RequestIds
from apps.probes.execution import shard_execute
from apps.probes.models import RunStatus
from apps.projects import services as project_services
from apps.simulator.scenarios import SimConfig, scenario
from tests.conftest import api_client_for
from tests.readiness_helpers import after_run

pytestmark = pytest.mark.django_db
KEY = "sk-stored-secret-0123456789"


def point(world, sim, **fields):
    return project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=sim.base_url, **fields
    )


def run_plan(world, endpoint, **fields):
    plan = services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=endpoint,
        name="strict",
        profile={"stages": [{"kind": "poisson", "rate": 20, "duration": 1}]},
        max_tokens=4,
        **fields,
    )
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    after_run(run)  # and the decision queue's tasks: the announcement
    return run


def test_a_plan_run_against_a_strict_server_succeeds_with_zero_refusals(world, started):
    sim = started(scenario("strict"))
    run = run_plan(world, point(world, sim))
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.summary["overall"]["errors"] == {} and run.request_count >= 10
    assert run.summary["request"]["dropped"] == [{"part": "stream_options", "why": "HTTP 400 with it, 200 without"}]
    # Every load request carried the run's UUID: shards share one nonce, kept in the run's config.
    ids = [RequestIds.parse(rid) for rid in sim.deployment.ground_truth]
    load = [i for i in ids if i and i[1] == 0]
    assert len(load) == run.request_count
    assert {nonce for nonce, _, _ in load} == {run.config["request_id_nonce"]}


def test_a_run_that_the_server_refuses_stops_after_the_preflight_with_a_diagnosis(world, started, client):
    sim = started(SimConfig(api_key="the-right-key"))
    endpoint = point(world, sim, api_key=KEY)
    run = run_plan(world, endpoint)
    assert run.status == RunStatus.FAILED
    assert run.error_message.startswith("preflight failed: HTTP 401")
    assert run.request_count == 0, "no load was sent"
    d = run.diagnosis
    assert d["status"] == 401 and "invalid api key" in d["body"] and "API key" in d["hint"]
    assert KEY not in str(d) and "Bearer [redacted]" in d["request"]
    # On the run page and in the API.
    client.force_login(world.viewer)
    page = client.get(reverse("run-detail", kwargs={"org_slug": "acme", "pk": run.pk})).content.decode()
    assert 'data-testid="diagnosis"' in page and "invalid api key" in page and "Bearer [redacted]" in page
    assert KEY not in page
    body = api_client_for(world.viewer).get(f"/api/v1/probe-runs/{run.pk}/").json()
    assert body["diagnosis"]["status"] == 401 and body["status"] == "failed"
    assert KEY not in str(body)


def test_a_plan_can_rename_or_switch_off_the_request_id_header(world, started):
    sim = started(scenario("steady"))
    endpoint = point(world, sim, request_id_header="none")
    run = run_plan(world, endpoint)
    assert run.config["request_id_header"] == "none"
    assert run.summary["request"]["request_id"]["header"] is None
    assert all(rid.startswith("cmpl-") for rid in sim.deployment.ground_truth), "no id was sent"
    with pytest.raises(Exception, match="header name"):
        services.probe_plan_create(
            access=world.access(world.owner),
            endpoint=endpoint,
            name="bad",
            profile={"stages": [{"kind": "poisson", "rate": 1, "duration": 1}]},
            request_id_header="X Bad",
        )


def test_an_endpoint_request_id_header_that_is_not_a_header_name_is_refused(world):
    response = api_client_for(world.owner).patch(
        f"/api/v1/endpoints/{world.endpoint.pk}/", {"request_id_header": "X-Id\r\nX-Evil: 1"}, format="json"
    )
    assert response.status_code == 400
    assert "request_id_header" in response.json()["error"]["detail"]


# --- the compatibility check ---------------------------------------------------------------------


def test_the_compatibility_check_is_stored_shown_and_used_by_the_next_run(world, started, client):
    sim = started(scenario("strict"))
    endpoint = point(world, sim)
    client.force_login(world.member)
    url = reverse("endpoint-compatibility", kwargs={"org_slug": "acme", "pk": endpoint.pk})
    assert "Not checked yet" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.compatibility["streaming"] is True
    assert endpoint.compatibility["accepts"] == {"request_id": True, "stream_options": False, "accept": True}
    page = client.get(url).content.decode()
    assert 'data-testid="compatibility-table"' in page and "accepts stream_options" in page
    # The next run leaves the refused part out from the start: its preflight needs one request.
    before = len(sim.deployment.ground_truth)
    run = run_plan(world, endpoint)
    assert run.config["parts_off"] == ["stream_options"]
    assert run.status == RunStatus.SUCCEEDED and run.summary["request"]["dropped"] == []
    assert len(sim.deployment.ground_truth) - before == run.request_count + 1


def test_the_compatibility_api_reads_and_runs_the_check(world, started):
    sim = started(scenario("steady"))
    endpoint = point(world, sim)
    api = api_client_for(world.member)
    assert api.get(f"/api/v1/endpoints/{endpoint.pk}/compatibility/").json()["compatibility"] is None
    body = api.post(f"/api/v1/endpoints/{endpoint.pk}/compatibility/").json()
    assert body["compatibility"]["streaming"] is True
    assert body["compatibility"]["metrics"]["families"] == ["readiness simulator", "vLLM"]
    assert api.get(f"/api/v1/endpoints/{endpoint.pk}/compatibility/").json() == body


def test_viewers_read_the_compatibility_but_cannot_run_it_and_outsiders_get_404(world, client):
    url = reverse("endpoint-compatibility", kwargs={"org_slug": "acme", "pk": world.endpoint.pk})
    client.force_login(world.viewer)
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="check-compatibility"' not in page.content.decode()
    assert client.post(url).status_code == 403
    assert api_client_for(world.viewer).post(f"/api/v1/endpoints/{world.endpoint.pk}/compatibility/").status_code == 403
    client.force_login(world.outsider)
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    outsider = api_client_for(world.outsider)
    for method in (outsider.get, outsider.post):
        assert method(f"/api/v1/endpoints/{world.endpoint.pk}/compatibility/").status_code == 404


# --- the errors reach the report and the webhook -------------------------------------------------


def test_a_failed_preflight_reaches_the_webhook_payload_with_its_diagnosis_and_no_key(world, started):
    from apps.integrations import services as integrations
    from apps.integrations.models import Delivery

    integrations.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hooks",
        url="http://127.0.0.1:9/hook",
        events=["probe.failed"],
    )
    sim = started(SimConfig(api_key="the-right-key"))
    run = run_plan(world, point(world, sim, api_key=KEY))
    payload = Delivery.objects.get(event="probe.failed").payload
    assert payload["data"]["run"] == run.pk
    assert payload["data"]["diagnosis"]["status"] == 401 and "API key" in payload["data"]["diagnosis"]["hint"]
    assert "invalid api key" in payload["data"]["diagnosis"]["body"]
    assert KEY not in str(payload)


def test_a_report_names_each_error_class_with_its_status_and_what_the_server_said(world, started, client):
    from apps.reports.services import report_create

    sim = started(scenario("flaky", fail_429=0.5, fail_500=0.0, hang=0.0, malformed=0.0, drop=0.0, seed=5))
    run = run_plan(world, point(world, sim))
    assert run.status == RunStatus.SUCCEEDED
    assert run.summary["error_details"]["429"]["statuses"] == {"429": run.summary["error_details"]["429"]["count"]}
    report = report_create(access=world.access(world.owner), project=world.project)
    probe = next(p for p in report.snapshot["probes"] if p["run_id"] == run.pk)
    assert probe["errors"][0].startswith("429: 429 x ") and "injected fault" in probe["errors"][0]
    client.force_login(world.viewer)
    page = client.get(reverse("report-detail", kwargs={"org_slug": "acme", "pk": report.pk})).content.decode()
    assert 'data-testid="report-errors"' in page and "injected fault" in page
