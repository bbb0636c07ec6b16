"""A plan's offered load (the chart on its page and the form's preview) and the plan form's refusals."""

import json

import pytest
from django.urls import reverse

from apps.core.errors import ApplicationError
from apps.costs.usage import probe_profile_from_curve
from apps.probes import plan_charts, services
from apps.probes.models import ProbePlan
from apps.probes.plans import offered_load


def test_a_ramp_offers_its_average_rate_and_a_closed_loop_stage_its_concurrency():
    load = offered_load(
        {
            "stages": [
                {"kind": "concurrent", "concurrency": 4, "duration": 10},
                {"kind": "poisson", "rate": 2, "rate_end": 6, "duration": 10},
            ]
        }
    )
    first, ramp = load["segments"]
    assert (first["start"], first["end"], first["concurrency"], first["rate"]) == (0, 10, 4, None)
    assert (ramp["start"], ramp["end"], ramp["rate"], ramp["rate_end"]) == (10, 20, 2, 6)
    assert load["duration_s"] == 20 and load["peak_rate"] == 6
    assert load["expected_requests"] is None  # a closed loop sends what the server's speed allows


def test_an_open_loop_plan_counts_the_requests_it_will_send():
    load = offered_load(
        {
            "stages": [
                {"kind": "constant", "rate": 4, "duration": 30},
                {"kind": "poisson", "rate": 2, "rate_end": 6, "duration": 10},
            ]
        }
    )
    assert load["expected_requests"] == 4 * 30 + 4 * 10


def test_a_sweep_shows_its_steps_if_every_one_held_and_says_so():
    load = offered_load({"sweep": {"start_rate": 2, "step_duration": 20, "growth": 2, "max_steps": 3}})
    assert [s["rate"] for s in load["segments"]] == [2, 4, 8]
    assert load["expected_requests"] is None and "every step meeting the SLOs" in load["notes"][0]
    measured_first = offered_load({"sweep": {"step_duration": 20}})
    assert [s["kind"] for s in measured_first["segments"]] == ["synchronous"]
    assert "first measures one synchronous step" in measured_first["notes"][0]


def test_an_autoscaling_step_sized_by_a_sweep_says_it_is_not_known_yet():
    spec = {"base_rate": 1, "base_s": 30, "hold_s": 60, "after_s": 30}
    sized = offered_load({"autoscaling": {**spec, "peak_rate": 6}})
    assert [s["rate"] for s in sized["segments"]] == [1, 6, 1] and sized["notes"] == []
    unsized = offered_load({"autoscaling": {**spec, "peak_multiple": 3}})
    assert unsized["expected_requests"] is None and "latest sweep" in unsized["notes"][0]


def test_an_invalid_profile_has_no_offered_load():
    with pytest.raises(ApplicationError):
        offered_load({"stages": []})


def test_the_offered_load_figure_titles_both_axes_with_their_units():
    load = offered_load(
        {
            "stages": [
                {"kind": "concurrent", "concurrency": 4, "duration": 10},
                {"kind": "constant", "rate": 2, "duration": 10},
            ]
        }
    )
    layout = plan_charts.offered_load_figure(load)["layout"]
    assert layout["xaxis"]["title"]["text"] == "Time from start (s)"
    assert layout["yaxis"]["title"]["text"] == "Offered rate (requests/s)"
    assert layout["yaxis2"]["title"]["text"] == "Concurrency (requests in flight)"


def test_a_replay_plan_shows_its_stages_as_a_chart_with_the_long_table_folded(client, world):
    curve = [(i * 7) % 40 + 1 for i in range(60)]
    profile = probe_profile_from_curve(curve, seconds_per_minute=1, name="usage")
    assert len(profile["stages"]) >= 50
    plan = services.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="replay", profile=profile
    )
    short = services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="short",
        profile={"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]},
    )
    client.force_login(world.viewer)
    response = client.get(reverse("plan-detail", kwargs={"org_slug": "acme", "pk": plan.pk}))
    html = response.content.decode()
    assert 'id="fig-offered-load"' in html
    assert '<details data-testid="stage-table">' in html  # folded: the chart tells the story
    assert f"{len(profile['stages'])} stages" in html
    html = client.get(reverse("plan-detail", kwargs={"org_slug": "acme", "pk": short.pk})).content.decode()
    assert '<details data-testid="stage-table" open>' in html


def test_a_refused_profile_is_shown_at_the_profile_with_everything_typed_kept(client, world):
    client.force_login(world.member)
    url = reverse("plan-create", kwargs={"org_slug": "acme", "endpoint_pk": world.endpoint.pk})
    typed = json.dumps({"stages": [{"kind": "poisson", "rate": 100000, "duration": 5}]})
    response = client.post(
        url,
        {
            "name": "too much",
            "profile": typed,
            "max_tokens": 64,
            "prompt_tokens": 256,
            "warmup_s": 0,
            "cooldown_s": 0,
            "parallelism": 1,
            "request_timeout_s": 60,
            "seed": 0,
            "regression_threshold_pct": 20,
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "exceeds the organization's max rate" in form.errors["profile"][0]
    assert form["profile"].value() == typed and form["name"].value() == "too much"
    assert not ProbePlan.objects.filter(name="too much").exists()
