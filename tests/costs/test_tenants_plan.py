"""A usage log becomes a noisy-neighbour plan for `manage.py probe --tenants`: the user with the
busiest minute bursts it, the next users send at their own average rates. Read by anyone who may
see the log, over the API and as a download; nobody else gets it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.costs import services
from apps.costs.usage import noisy_neighbour_plan
from apps.probes.engine.tenants import TenantPlan
from tests.conftest import api_client_for


def analysis(users: list[tuple[str, int, int]], span_minutes: int = 60) -> dict:
    """An analysis with (user, requests, busiest minute's requests) rows, as usage.analyse writes it."""
    return {
        "per_minute": {"span_minutes": span_minutes},
        "top_users": [{"user": u, "requests": n, "max_requests_in_a_minute": peak} for u, n, peak in users],
    }


def test_the_busiest_minute_bursts_and_the_next_users_keep_their_own_rates():
    plan = noisy_neighbour_plan(
        analysis([("steady-big", 3600, 70), ("bursty", 900, 120), ("b", 600, 15), ("c", 360, 9), ("d", 60, 2)]),
        quiet=2,
    )
    noisy, *quiet = plan["tenants"]
    assert noisy["name"] == "bursty" and noisy["burst"] == {"at": 60.0, "requests": 120}
    assert noisy["stages"] == [{"kind": "poisson", "rate": 0.25, "duration": 180.0}]  # 900 requests / 3,600 s
    assert [(q["name"], q["stages"][0]["rate"]) for q in quiet] == [("steady-big", 1.0), ("b", 0.166667)]
    TenantPlan.from_dict(plan)  # the probe reads it as it is


@pytest.mark.parametrize(
    "users, message",
    [
        ([("alone", 100, 10)], "at least two users"),
        ([], "at least two users"),
    ],
)
def test_a_log_that_cannot_make_a_plan_says_why(users, message):
    with pytest.raises(ValueError, match=message):
        noisy_neighbour_plan(analysis(users))


def _log(world, rows: list[str]):
    csv = "timestamp,user,tenant,input_tokens,output_tokens\n" + "\n".join(rows)
    log = services.usage_log_upload(
        access=world.access(world.owner), project=world.project, upload=SimpleUploadedFile("u.csv", csv.encode())
    )
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    return log


@pytest.fixture
def log(world):
    rows = [f"2026-11-02T09:{m:02d}:00Z,steady{m % 3},t1,400,40" for m in range(60)]
    rows += [f"2026-11-02T09:30:{s:02d}Z,burster,t2,400,40" for s in range(0, 60, 2)]  # 30 in one minute
    return _log(world, rows)


def test_the_plan_is_served_to_readers_over_the_api_and_as_a_download(world, log):
    viewer = api_client_for(world.viewer)
    response = viewer.get(f"/api/v1/usage-logs/{log.pk}/tenants-plan/")
    assert response.status_code == 200, response.content
    plan = response.json()
    assert plan["tenants"][0]["name"] == "burster" and plan["tenants"][0]["burst"]["requests"] == 30
    assert {t["name"] for t in plan["tenants"][1:]} == {"steady0", "steady1", "steady2"}
    page = viewer.get(f"/o/acme/usage-logs/{log.pk}/")
    assert 'data-testid="tenants-plan"' in page.content.decode()
    download = viewer.get(f"/o/acme/usage-logs/{log.pk}/tenants.json")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert download.json() == plan


def test_an_outsider_gets_404_everywhere(world, log):
    outsider = api_client_for(world.outsider)
    assert outsider.get(f"/api/v1/usage-logs/{log.pk}/tenants-plan/").status_code == 404
    assert outsider.get(f"/o/acme/usage-logs/{log.pk}/tenants.json").status_code == 404
    assert outsider.get(f"/o/globex/usage-logs/{log.pk}/tenants.json").status_code == 404


def test_a_log_of_one_user_or_not_yet_analysed_gets_a_clear_refusal(world):
    single = _log(world, [f"2026-11-02T09:{m:02d}:00Z,only,t1,400,40" for m in range(10)])
    client = api_client_for(world.owner)
    response = client.get(f"/api/v1/usage-logs/{single.pk}/tenants-plan/")
    assert response.status_code == 409
    assert "at least two users" in response.json()["error"]["message"]
    page = client.get(f"/o/acme/usage-logs/{single.pk}/tenants.json", follow=True)
    assert "at least two users" in page.content.decode()
    pending = services.usage_log_upload(
        access=world.access(world.owner),
        project=world.project,
        upload=SimpleUploadedFile("p.csv", b"timestamp,user,input_tokens,output_tokens\n"),
    )
    assert client.get(f"/api/v1/usage-logs/{pending.pk}/tenants-plan/").status_code == 409


def test_scale_and_quiet_shape_the_plan_and_bad_values_are_refused_at_their_field(world, log):
    client = api_client_for(world.viewer)
    plan = client.get(f"/api/v1/usage-logs/{log.pk}/tenants-plan/?scale=10&quiet=1").json()
    noisy, quiet = plan["tenants"]
    # Each asks with its own average sizes from the log (400 in, 40 out for everyone here).
    assert (noisy["prompt_tokens"], noisy["max_tokens"], quiet["prompt_tokens"], quiet["max_tokens"]) == (
        400,
        40,
        400,
        40,
    )
    assert noisy["burst"]["requests"] == 300 and quiet["stages"][0]["rate"] == round(10 * 20 / 3600, 6)
    for query, field in (("scale=0", "scale"), ("scale=nan", "scale"), ("quiet=0", "quiet"), ("quiet=x", "quiet")):
        response = client.get(f"/api/v1/usage-logs/{log.pk}/tenants-plan/?{query}")
        assert response.status_code == 400 and field in response.json()["error"]["detail"], query


def test_a_member_creates_the_plan_on_an_endpoint_of_the_logs_project_over_the_api_and_the_page(world, log):
    from apps.probes.models import ProbePlan

    member = api_client_for(world.member)
    body = {"endpoint": world.endpoint.pk, "scale": 30, "quiet": 1}
    created = member.post(f"/api/v1/usage-logs/{log.pk}/tenants-replay/", body, format="json")
    assert created.status_code == 201, created.content
    profile = created.json()["profile"]["tenants"]
    assert [t["name"] for t in profile["tenants"]] == ["burster", "steady0"]
    # Scaled so that the quiet tenant has something to measure: 20 requests an hour x 30 over 180 s.
    assert profile["tenants"][1]["stages"][0]["rate"] * 180 == pytest.approx(30, rel=0.01)
    # Another org's endpoint, a viewer, an outsider: refused, and no plan is made.
    foreign = member.post(
        f"/api/v1/usage-logs/{log.pk}/tenants-replay/", {**body, "endpoint": world.other_endpoint.pk}, format="json"
    )
    assert foreign.status_code == 400 and "endpoint" in foreign.json()["error"]["detail"]
    viewer = api_client_for(world.viewer).post(f"/api/v1/usage-logs/{log.pk}/tenants-replay/", body, format="json")
    assert viewer.status_code == 403
    outsider = api_client_for(world.outsider).post(f"/api/v1/usage-logs/{log.pk}/tenants-replay/", body, format="json")
    assert outsider.status_code == 404
    assert ProbePlan.objects.count() == 1
    # The page: a refusal keeps what was typed at its field; a good form opens the new plan.
    page = api_client_for(world.member)
    url = f"/o/acme/usage-logs/{log.pk}/tenants-replay/"
    refused = page.post(url, {"endpoint": world.endpoint.pk, "scale": "-1", "quiet": "1"})
    assert refused.status_code == 400 and refused.context["tenants_form"]["scale"].value() == "-1"
    assert "scale" in refused.context["tenants_form"].errors
    done = page.post(url, {"endpoint": world.endpoint.pk, "scale": "20", "quiet": "1"})
    assert done.status_code == 302 and ProbePlan.objects.count() == 2
    assert page.get(f"/o/acme/usage-logs/{log.pk}/").content.decode().count('data-testid="tenants-form"') == 1
    assert (
        'data-testid="tenants-form"'
        not in api_client_for(world.viewer).get(f"/o/acme/usage-logs/{log.pk}/").content.decode()
    )
