"""The noisy-neighbour plan and its analysis, as plain Python: the plan's rules, Jain's index
against its closed form, and the verdict from records written by hand (a quiet tenant that kept
its latency, one that did not, one with too little traffic, a saturated client)."""

from __future__ import annotations

import pytest

from apps.probes.engine.profiles import Stage
from apps.probes.engine.records import HTTP_4XX, HTTP_429, OK, Records
from apps.probes.engine.runner import ProbeConfig
from apps.probes.engine.stats import SLO, Window, summarize
from apps.probes.engine.tenants import (
    INCONCLUSIVE,
    ISOLATED,
    LEAKY,
    Burst,
    Isolation,
    Tenant,
    TenantPlan,
    TenantRun,
    analyse,
    jain_index,
    tenant_config,
)

STEADY = (Stage(kind="constant", duration=30, rate=1),)


def plan(**isolation) -> TenantPlan:
    return TenantPlan(
        tenants=(
            Tenant("quiet", stages=STEADY),
            Tenant("noisy", burst=Burst(at=10, requests=50, over=10)),
        ),
        isolation=Isolation(**isolation),
    )


def tenant_run(tenant: Tenant, rows: list[tuple[float, float, int]], *, saturated: bool = False) -> TenantRun:
    """Records of (send time, TTFT in s, error class), each answer 10 tokens taking 0.1 s more."""
    records = Records()
    for seq, (t, ttft, error) in enumerate(rows):
        first = t + ttft if error == OK else float("nan")
        last = first + 0.1 if error == OK else t + 0.01
        records.append(t, t, first, last, 100, 10 if error == OK else 0, 10, error, 0, 0, seq, 200)
    summary = summarize(records, [Window(0, "all", 0.0, 30.0)], SLO())
    summary["client_saturated"] = saturated
    return TenantRun(tenant, records, summary)


def quiet_rows(before: float, during: float, after: float, *, during_error: int = OK) -> list:
    rows = [(t + 0.5, before, OK) for t in range(10)]
    rows += [(t + 0.5, during, during_error if t % 2 else OK) for t in range(10, 20)]
    rows += [(t + 0.5, after, OK) for t in range(20, 30)]
    return rows


def noisy_rows(error: int = OK) -> list:
    return [(10 + i * 0.2, 0.05, error) for i in range(50)]


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1.0, 1.0, 1.0], 1.0),  # equal shares
        ([1.0, 0.0, 0.0, 0.0], 0.25),  # one got everything: 1/n
        ([1.0, 0.5], 0.9),  # (1.5)^2 / (2 * 1.25)
        ([0.0, 0.0], None),  # nobody was served: no index
        ([], None),
    ],
)
def test_jain_index_matches_its_closed_form(values, expected):
    assert jain_index(values) == expected


def test_a_quiet_tenant_that_kept_its_latency_is_isolated_and_the_figures_are_per_phase():
    p = plan()
    quiet, noisy = p.tenants
    report = analyse([tenant_run(quiet, quiet_rows(0.05, 0.06, 0.05)), tenant_run(noisy, noisy_rows())], p, SLO())
    assert report["verdict"] == ISOLATED, report["reasons"]
    [entry] = report["quiet"]
    assert [ph["phase"] for ph in entry["phases"]] == ["before", "during", "after"]
    assert [ph["requests"] for ph in entry["phases"]] == [10, 10, 10]
    assert entry["ttft_ratio_during"] == pytest.approx(1.2, abs=0.01)
    assert report["noisy"] == "noisy" and report["throttled"] == [] and report["throttled_only_noisy"]
    assert report["jain_index"] == 1.0


def test_a_quiet_tenant_slowed_by_the_burst_makes_the_endpoint_leaky_with_the_figures_in_words():
    p = plan(ttft_increase_pct=50)
    quiet, noisy = p.tenants
    report = analyse([tenant_run(quiet, quiet_rows(0.05, 0.4, 0.05)), tenant_run(noisy, noisy_rows())], p, SLO())
    assert report["verdict"] == LEAKY
    assert "quiet: p95 TTFT 400 ms during the burst, 8x its baseline of 50 ms" in report["reasons"][0]


def test_errors_of_a_quiet_tenant_during_the_burst_are_a_leak_and_throttling_is_attributed():
    p = plan(error_rate_increase=0.05)
    quiet, noisy = p.tenants
    runs = [tenant_run(quiet, quiet_rows(0.05, 0.05, 0.05, during_error=HTTP_429)), tenant_run(noisy, noisy_rows())]
    report = analyse(runs, p, SLO())
    assert report["verdict"] == LEAKY and "error rate 50.0% during the burst" in report["reasons"][0]
    assert report["throttled"] == ["quiet"] and report["throttled_only_noisy"] is False


def test_throttling_only_the_noisy_tenant_is_isolation():
    p = plan()
    quiet, noisy = p.tenants
    runs = [tenant_run(quiet, quiet_rows(0.05, 0.05, 0.05)), tenant_run(noisy, noisy_rows(HTTP_429))]
    report = analyse(runs, p, SLO())
    assert report["verdict"] == ISOLATED
    assert report["throttled"] == ["noisy"] and report["throttled_only_noisy"] is True
    noisy_figures = next(t for t in report["tenants"] if t["noisy"])
    assert noisy_figures["throttled"] == 50 and noisy_figures["errors"] == {"429": 50}
    assert report["jain_index"] == 0.5  # the quiet tenant got all it asked, the noisy one nothing


def test_too_little_quiet_traffic_or_a_saturated_client_proves_nothing():
    p = plan()
    quiet, noisy = p.tenants
    sparse = [(t + 0.5, 0.05, OK) for t in range(0, 30, 4)]  # 2 or 3 requests a phase
    report = analyse([tenant_run(quiet, sparse), tenant_run(noisy, noisy_rows())], p, SLO())
    assert report["verdict"] == INCONCLUSIVE and "at least 5 each are needed" in report["reasons"][0]
    runs = [tenant_run(quiet, quiet_rows(0.05, 0.4, 0.05), saturated=True), tenant_run(noisy, noisy_rows())]
    report = analyse(runs, p, SLO())
    assert report["verdict"] == INCONCLUSIVE and "fell behind its schedule" in report["reasons"][0]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"tenants": [{"name": "a", "stages": [{"kind": "constant", "duration": 5, "rate": 1}]}]}, "2 to 20"),
        (
            {"tenants": [{"name": "a", "stages": [{"kind": "constant", "duration": 5, "rate": 1}]}, {"name": "b"}]},
            "exactly one tenant bursts",
        ),
        ({"tenants": [{"name": "a", "burst": {"at": 1, "requests": 5}}, {"name": "a"}]}, "a name of its own"),
        (
            {"tenants": [{"name": "a", "burst": {"at": 1, "requests": 5}}, {"name": "b"}]},
            "quiet tenant needs traffic",
        ),
        ({"tenants": [{"name": "a", "burst": {"at": -1, "requests": 5}}, {"name": "b"}]}, "must not be negative"),
        ({"tenants": [{"name": "a", "burst": {"at": 1, "requests": 0}}, {"name": "b"}]}, "at least 1"),
        ({"tenants": [], "noisy": "a"}, "unknown field"),
        ({"tenants": [{"name": "a", "weight": 2}]}, "unknown tenant field"),
        ({"tenants": "a"}, "expected"),
    ],
)
def test_a_bad_plan_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        TenantPlan.from_dict(data)


def test_each_tenant_sends_its_own_key_and_header_and_a_header_cannot_smuggle_lines():
    p = TenantPlan.from_dict(
        {
            "tenants": [
                {"name": "quiet", "api_key": "sk-quiet", "stages": [{"kind": "constant", "duration": 5, "rate": 1}]},
                {"name": "noisy", "header": "team-7", "burst": {"at": 1, "requests": 5, "over": 2}},
            ]
        }
    )
    base = ProbeConfig(base_url="http://127.0.0.1:9/v1", model="m", stages=[], api_key="sk-shared")
    quiet = tenant_config(base, p, p.tenants[0], 0)
    noisy = tenant_config(base, p, p.tenants[1], 1)
    assert quiet.api_key == "sk-quiet" and quiet.headers == (("X-Tenant", "quiet"),)
    assert noisy.api_key == "sk-shared" and noisy.headers == (("X-Tenant", "team-7"),)
    assert [s.name for s in noisy.stages] == ["burst"] and noisy.seed != quiet.seed
    with pytest.raises(ValueError, match="control"):
        ProbeConfig(base_url="http://127.0.0.1:9/v1", model="m", stages=[], headers=(("X-Tenant", "a\r\nX: y"),))
    for name in ("Authorization", "Host", "X-Request-Id", "Bad Name"):
        with pytest.raises(ValueError, match="cannot be sent"):
            ProbeConfig(base_url="http://127.0.0.1:9/v1", model="m", stages=[], headers=((name, "v"),))


def test_a_backlog_that_spills_past_the_burst_is_a_leak_too():
    p = plan(ttft_increase_pct=50)
    quiet, noisy = p.tenants
    report = analyse([tenant_run(quiet, quiet_rows(0.05, 0.06, 0.4)), tenant_run(noisy, noisy_rows())], p, SLO())
    assert report["verdict"] == LEAKY
    assert "quiet: p95 TTFT 400 ms after the burst" in report["reasons"][0]


def test_a_burst_that_did_not_happen_as_planned_proves_nothing():
    p = plan()
    quiet, noisy = p.tenants
    calm = tenant_run(quiet, quiet_rows(0.05, 0.05, 0.05))
    # Sent 10 of its 50 (a budget cut, a fail-fast stop): no noisy neighbour was there to isolate from.
    report = analyse([calm, tenant_run(noisy, noisy_rows()[:10])], p, SLO())
    assert report["verdict"] == INCONCLUSIVE and "sent 10 of its 50 burst requests" in report["reasons"][0]
    assert report["isolated"] is None
    # Refused at the gateway for a wrong key: the server's queue never saw the burst.
    report = analyse([calm, tenant_run(noisy, noisy_rows(HTTP_4XX))], p, SLO())
    assert report["verdict"] == INCONCLUSIVE and "never reached the server's queue" in report["reasons"][0]
    # A smaller burst that still slowed the quiet tenant is a leak all the same.
    slowed = tenant_run(quiet, quiet_rows(0.05, 0.4, 0.05))
    assert analyse([slowed, tenant_run(noisy, noisy_rows()[:10])], p, SLO())["verdict"] == LEAKY
