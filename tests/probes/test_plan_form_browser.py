"""Plans in headless Chromium: the profile form, its preview and the JSON expert mode; comparing two runs."""

import json
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.probes import plan_charts, plans
from apps.probes import services as probes
from apps.probes.models import ProbePlan, ProbeRun
from apps.projects import services as projects
from tests.browser import log_in
from tests.conftest import endpoint_fields, make_user
from tests.probes.test_compare_page import PROFILE, summary

pytestmark = pytest.mark.browser


@pytest.fixture
def endpoint(transactional_db):
    user = make_user("hana")
    org = org_services.organization_create(name="Umbrella", slug="umbrella", owner=user)
    access = Access.for_user(user)
    project = projects.project_create(access=access, organization=org, name="Claims Bot")
    return projects.endpoint_create(access=access, project=project, **endpoint_fields())


def shot(page, name: str) -> None:
    """Screenshots for a person to look at (desktop and phone), when READINESS_SHOTS names a folder."""
    folder = os.environ.get("READINESS_SHOTS")
    if folder:
        for width, height in ((1440, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{folder}/{name}-{width}.png", full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})


def axis_titles(page, chart: str) -> list[str]:
    """The axis titles Plotly rendered into the chart's SVG."""
    page.wait_for_function(f"() => document.querySelector('{chart} .xtitle')")
    return [page.text_content(f"{chart} .xtitle"), page.text_content(f"{chart} .ytitle")]


def test_a_constant_rate_plan_is_built_with_the_form_previewed_and_saved_as_the_expected_json(
    page, live_server, endpoint
):
    log_in(page, live_server.url, "hana")
    page.goto(f"{live_server.url}/o/umbrella/endpoints/{endpoint.pk}/plans/new/")
    assert page.is_visible("#pb-shape") and not page.is_visible("#id_profile")  # the form, not the JSON
    page.fill("#id_name", "steady 4 per second")
    page.select_option("#pb-shape", "constant")
    page.fill("#pb-duration", "30")
    page.fill("#pb-rate", "4")

    expected = {"stages": [{"kind": "constant", "duration": 30, "rate": 4}]}
    assert json.loads(page.input_value("#id_profile")) == expected
    assert axis_titles(page, "#pb-preview") == ["Time from start (s)", "Offered rate (requests/s)"]
    assert page.inner_text("[data-testid=profile-summary]") == "Runs 30 s · about 120 requests · peak 4 requests/s."
    # The preview draws what the plan page will: the same traces as the server's figure.
    drawn = page.evaluate("() => document.getElementById('pb-preview').data.map(t => [t.name, t.x, t.y])")
    server = plan_charts.offered_load_traces(plans.offered_load(expected))
    assert drawn == [[t["name"], t["x"], t["y"]] for t in server]
    shot(page, "plan-form")

    page.click("button:has-text('Create plan')")
    page.wait_for_url("**/o/umbrella/plans/*/")
    assert ProbePlan.objects.get(name="steady 4 per second").profile == expected
    assert axis_titles(page, "#fig-offered-load") == ["Time from start (s)", "Offered rate (requests/s)"]
    shot(page, "plan-detail")


def test_a_refused_profile_keeps_what_was_typed_and_shows_the_error_at_the_profile(page, live_server, endpoint):
    log_in(page, live_server.url, "hana")
    page.goto(f"{live_server.url}/o/umbrella/endpoints/{endpoint.pk}/plans/new/")
    page.fill("#id_name", "too much")
    page.select_option("#pb-shape", "poisson")
    page.fill("#pb-rate", "100000")
    page.fill("#id_max_tokens", "64")
    page.click("button:has-text('Create plan')")
    page.wait_for_selector("#profile-builder .errorlist")
    assert "exceeds the organization's max rate" in page.inner_text("#profile-builder .errorlist")
    # Still the form, holding what was typed, and every other field as it was.
    assert page.is_visible("#pb-rate") and page.input_value("#pb-rate") == "100000"
    assert page.get_attribute("#pb-rate", "aria-invalid") == "true"  # marked where it is fixed
    assert page.get_attribute("#pb-duration", "aria-invalid") is None
    assert page.input_value("#pb-shape") == "poisson"
    assert page.input_value("#id_name") == "too much" and page.input_value("#id_max_tokens") == "64"
    assert not ProbePlan.objects.exists()


def test_a_profile_the_form_cannot_show_opens_as_json_and_saves_exactly_as_typed(page, live_server, endpoint):
    owner = endpoint.project.organization.memberships.get().user
    sweep = {"sweep": {"start_rate": 2, "step_duration": 10, "keep_up": 0.8}}  # keep_up: not on the form
    plan = probes.probe_plan_create(access=Access.for_user(owner), endpoint=endpoint, name="sweep", profile=sweep)
    log_in(page, live_server.url, "hana")
    page.goto(f"{live_server.url}/o/umbrella/plans/{plan.pk}/edit/")
    assert page.is_visible("#id_profile") and not page.is_visible("#pb-shape")
    assert "opens as JSON" in page.inner_text("#pb-note")
    assert json.loads(page.input_value("#id_profile")) == sweep
    page.click("[data-mode=form]")
    assert "cannot show this JSON" in page.inner_text("#pb-note")
    assert page.is_visible("#id_profile")

    edited = {"sweep": {"start_rate": 3, "step_duration": 12, "keep_up": 0.85}}
    page.fill("#id_profile", json.dumps(edited))
    page.wait_for_function("() => document.getElementById('pb-preview').data")
    assert axis_titles(page, "#pb-preview") == ["Time from start (s)", "Offered rate (requests/s)"]
    page.click("button:has-text('Save plan')")
    page.wait_for_url(f"**/o/umbrella/plans/{plan.pk}/")
    plan.refresh_from_db()
    assert plan.profile == edited


def test_json_typed_in_expert_mode_opens_in_the_form_and_saves_from_it(page, live_server, endpoint):
    owner = endpoint.project.organization.memberships.get().user
    plan = probes.probe_plan_create(
        access=Access.for_user(owner),
        endpoint=endpoint,
        name="steps",
        profile={"stages": [{"kind": "poisson", "rate": 2, "duration": 20}]},
    )
    log_in(page, live_server.url, "hana")
    page.goto(f"{live_server.url}/o/umbrella/plans/{plan.pk}/edit/")
    assert page.input_value("#pb-shape") == "poisson" and page.input_value("#pb-rate") == "2"
    page.click("[data-mode=json]")
    assert json.loads(page.input_value("#id_profile")) == plan.profile
    two = {
        "stages": [
            {"kind": "concurrent", "duration": 10, "concurrency": 4},
            {"kind": "constant", "duration": 20, "rate": 2, "rate_end": 6, "name": "ramp"},
        ]
    }
    page.fill("#id_profile", json.dumps(two))
    page.click("[data-mode=form]")
    assert page.input_value("#pb-shape") == "stages"
    assert page.locator("#pb-stages tr").count() == 2
    assert page.input_value("#pb-stages tr:nth-child(2) [data-k=name]") == "ramp"
    # Two kinds of load: requests/s on the left, requests in flight on the right.
    page.wait_for_function("() => document.getElementById('pb-preview').data.length === 2")
    assert page.text_content("#pb-preview .y2title") == "Concurrency (requests in flight)"
    page.fill("#pb-stages tr:nth-child(2) [data-k=rate_end]", "8")
    # On a phone the stage table scrolls inside its box; the page itself does not scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "plan-form-stages")
    page.click("button:has-text('Save plan')")
    page.wait_for_url(f"**/o/umbrella/plans/{plan.pk}/")
    plan.refresh_from_db()
    two["stages"][1]["rate_end"] = 8
    assert plan.profile == two


def test_in_chromium_the_picker_opens_two_chosen_runs_and_colours_only_changes_beyond_the_threshold(
    page, live_server, endpoint
):
    owner = endpoint.project.organization.memberships.get().user
    plan = probes.probe_plan_create(
        access=Access.for_user(owner), endpoint=endpoint, name="nightly", profile=PROFILE, regression_threshold_pct=10
    )

    def run(minutes_ago, **figures):
        at = timezone.now() - timedelta(minutes=minutes_ago)
        return ProbeRun.objects.create(
            organization=endpoint.project.organization,
            plan=plan,
            status="succeeded",
            config={},
            planned_duration_s=5,
            start_at=0,
            summary=summary(**figures),
            finished_at=at,
            created_at=at,
        )

    oldest = run(30, ttft=100.0, tpot=20.0)
    run(20, ttft=500.0, tpot=80.0)  # the default pair is the newest two; this one is skipped below
    newest = run(10, ttft=99.0, tpot=25.0)
    log_in(page, live_server.url, "hana")
    page.goto(f"{live_server.url}/o/umbrella/plans/{plan.pk}/")
    page.click("[data-testid=compare-runs]")
    page.wait_for_url(f"**/runs/{newest.pk}/compare/*/")
    page.select_option("#pick-a", str(oldest.pk))
    page.click("[data-testid=run-picker] button:has-text('Compare')")
    page.wait_for_url(f"**/runs/{newest.pk}/compare/{oldest.pk}/")
    table = page.locator("[data-testid=compare-table]")
    ttft = table.locator("tr", has_text="TTFT p95").locator("[data-verdict]")
    tpot = table.locator("tr", has_text="TPOT p95").locator("[data-verdict]")
    assert ttft.get_attribute("data-verdict") == "neutral" and "fail" not in ttft.get_attribute("class")
    assert tpot.get_attribute("data-verdict") == "worse" and "fail" in tpot.get_attribute("class")
    assert "(+25.0 %)" in tpot.inner_text() and "(-1.0 %)" in ttft.inner_text()
    shot(page, "run-compare")
