"""What each tenant of a noisy-neighbour run paid per 1M output tokens within its SLO: the pure
rule against hand-computed figures, and the project's cost page and API, which read the newest
noisy-neighbour run and show it to the project's readers only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.costs.pricing import tenant_usd_per_mtok_output
from apps.probes import services as probes
from apps.probes.models import ProbeRun
from tests.conftest import api_client_for


def tenant(name, requests, tokens, within, noisy=False) -> dict:
    return {"name": name, "noisy": noisy, "requests": requests, "output_tokens": tokens, "slo_attainment": within}


@pytest.mark.parametrize(
    "tenants, usd_per_hour, usd_per_mtok, expected",
    [
        # $3.60/h over a 100 s run is $0.10; each sent half the requests: $0.05 over its good tokens.
        ([tenant("quiet", 50, 10_000, 1.0), tenant("noisy", 50, 20_000, 0.5, True)], 3.6, None, [5.0, 5.0]),
        # Starved: the same share of the bill over a tenth of the useful tokens costs ten times more.
        ([tenant("quiet", 50, 10_000, 0.1), tenant("noisy", 50, 10_000, 1.0, True)], 3.6, None, [50.0, 5.0]),
        # No SLO set: every completed token counts.
        ([tenant("a", 30, 6_000, None), tenant("b", 90, 6_000, None)], 3.6, None, [4.1667, 12.5]),
        # Hosted: every token is billed; those outside the SLO are wasted.
        ([tenant("a", 10, 50, 0.8), tenant("b", 10, 50, 1.0)], None, 10.0, [12.5, 10.0]),
        # Nothing served within the SLO has no price; nor has an unpriced endpoint.
        ([tenant("a", 10, 50, 0.0), tenant("b", 10, 0, 1.0)], 3.6, None, [None, None]),
        ([tenant("a", 10, 50, 1.0), tenant("b", 10, 50, 1.0)], None, None, [None, None]),
    ],
)
def test_each_tenant_pays_its_share_of_the_deployment_per_useful_token(tenants, usd_per_hour, usd_per_mtok, expected):
    rows = tenant_usd_per_mtok_output(tenants, duration_s=100, usd_per_hour=usd_per_hour, usd_per_mtok=usd_per_mtok)
    assert [r["usd_per_mtok_output"] for r in rows] == expected
    assert [r["name"] for r in rows] == [t["name"] for t in tenants]


def test_the_cost_page_and_api_show_the_newest_noisy_neighbour_runs_tenants_to_readers_only(world, client):
    plan = probes.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="neighbours",
        profile={
            "tenants": {
                "tenants": [
                    {"name": "<b>quiet</b>", "stages": [{"kind": "constant", "rate": 1, "duration": 10}]},
                    {"name": "noisy", "burst": {"at": 2, "requests": 10, "over": 2}},
                ]
            }
        },
    )
    run = probes.probe_run_start(access=world.access(world.owner), plan=plan)
    analysis = {
        "verdict": "isolated",  # evidence: an inconclusive run prices nobody
        "duration_s": 10,
        "tenants": [tenant("<b>quiet</b>", 10, 200, 0.5), tenant("noisy", 10, 200, 1.0, True)],
    }
    overall = {"requests": 20, "goodput": 1.0, "output_token_throughput": 40.0, "request_throughput": 2.0}
    ProbeRun.objects.filter(pk=run.pk).update(
        status="succeeded", finished_at=timezone.now(), summary={"overall": overall, "tenants": analysis}
    )
    body = api_client_for(world.viewer).get(f"/api/v1/projects/{world.project.pk}/cost/").json()
    # The endpoint: 1 x $0.80/GPU-h, 1 replica, for 10 s; each tenant sent half.
    assert body["tenants"]["run_id"] == run.pk and body["tenants"]["priced"] is True
    quiet, noisy = body["tenants"]["tenants"]
    assert quiet["usd_per_mtok_output"] == round(0.8 * 10 / 3600 * 0.5 / 100 * 1e6, 4)
    assert noisy["usd_per_mtok_output"] == round(0.8 * 10 / 3600 * 0.5 / 200 * 1e6, 4)
    client.force_login(world.viewer)
    page = client.get(f"/o/acme/projects/{world.project.slug}/cost/").content.decode()
    assert 'data-testid="tenant-costs"' in page and "&lt;b&gt;quiet&lt;/b&gt;" in page
    assert api_client_for(world.outsider).get(f"/api/v1/projects/{world.project.pk}/cost/").status_code == 404
    # A run that proves nothing prices nobody.
    ProbeRun.objects.filter(pk=run.pk).update(
        summary={"overall": overall, "tenants": {**analysis, "verdict": "inconclusive"}}
    )
    assert api_client_for(world.viewer).get(f"/api/v1/projects/{world.project.pk}/cost/").json()["tenants"] is None
