"""The noisy-neighbour probe against the simulator over real HTTP on 127.0.0.1: one tenant bursts
while a quiet one keeps sending, on a deployment with no isolation (one shared queue), with fair
queueing, and with a per-tenant token bucket at the gateway. The verdict must be leaky on the first
and isolated on the other two; the simulator's ground truth says which tenant each request was."""

from __future__ import annotations

import argparse
import io
import json

import httpx
import pytest

from apps.probes import cli
from apps.probes.engine.runner import ProbeConfig
from apps.probes.engine.stats import SLO
from apps.probes.engine.tenants import INCONCLUSIVE, ISOLATED, LEAKY, TenantPlan, run_tenant_probe
from apps.simulator.scenarios import scenario

MODEL = "sim-llama-3-8b"
PLAN = {
    "tenants": [
        {"name": "quiet", "stages": [{"kind": "constant", "rate": 10, "duration": 5}]},
        {"name": "noisy", "burst": {"at": 2.0, "requests": 48, "over": 1.0}},
    ],
    # The simulator's fair queue still makes a quiet request wait for the next free slot (about one
    # request, ~2-3x its 40 ms baseline); no isolation makes it wait for the whole burst (~35x).
    "isolation": {"ttft_increase_pct": 400, "error_rate_increase": 0.02},
}


def probe(sim, plan: dict = PLAN, tries: int = 3):
    """Run the plan; a run in which the busy test machine's client fell behind proves nothing, and
    is run again, as the product re-runs a client-saturated run."""
    # 25 ms of client lag cannot fake the 5x the plan allows; the default 5 ms trips on a busy machine.
    base = ProbeConfig(
        base_url=sim.base_url,
        model=MODEL,
        stages=[],
        max_tokens=8,
        allow_private=True,
        slo=SLO(),
        saturation_threshold_ms=25.0,
    )
    for _ in range(tries):
        httpx.post(sim.base_url.removesuffix("/v1") + "/admin/reset")  # ground truth of this try only
        runs, report = run_tenant_probe(base, TenantPlan.from_dict(plan))
        if report["verdict"] != INCONCLUSIVE:
            return runs, report
    pytest.fail(f"{tries} runs were inconclusive: {report['reasons']}")


def test_without_isolation_the_burst_starves_the_quiet_tenant_and_the_verdict_is_leaky(started):
    sim = started(scenario("tenants-fifo"))
    runs, report = probe(sim)
    assert report["verdict"] == LEAKY, report
    [quiet] = report["quiet"]
    assert quiet["ttft_ratio_during"] > 5  # measured ~35x: the burst's whole queue ahead of it
    assert "quiet: p95 TTFT" in report["reasons"][0] and "during the burst" in report["reasons"][0]
    # The ground truth saw each tenant's requests under its own name.
    truth = httpx.get(sim.base_url.removesuffix("/v1") + "/admin/ground-truth").json()
    by_tenant = {}
    for row in truth["requests"].values():
        by_tenant[row["tenant"]] = by_tenant.get(row["tenant"], 0) + 1
    assert by_tenant["noisy"] == 48 and by_tenant["quiet"] == report["tenants"][0]["requests"]


def test_fair_queueing_keeps_the_quiet_tenant_within_its_bounds_and_the_verdict_is_isolated(started):
    sim = started(scenario("tenants-fair"))
    runs, report = probe(sim)
    assert report["verdict"] == ISOLATED, report
    assert report["quiet"][0]["ttft_ratio_during"] < 5
    assert report["throttled"] == [] and report["jain_index"] > 0.9


def test_a_gateway_bucket_throttles_only_the_noisy_tenant(started):
    # Each tenant may send 4 requests/s (bucket of 4): the quiet one sends 3/s, the noisy one 24/s.
    sim = started(scenario("tenants-bucket", tenant_rate=4.0, tenant_burst=4.0))
    plan = {
        "tenants": [
            {"name": "quiet", "stages": [{"kind": "constant", "rate": 3, "duration": 8}]},
            {"name": "noisy", "burst": {"at": 3.0, "requests": 48, "over": 2.0}},
        ],
        "isolation": PLAN["isolation"],
    }
    runs, report = probe(sim, plan)
    assert report["verdict"] == ISOLATED, report
    assert report["throttled"] == ["noisy"] and report["throttled_only_noisy"] is True
    noisy = next(t for t in report["tenants"] if t["noisy"])
    assert noisy["throttled"] >= 24 and noisy["errors"]["429"] == noisy["throttled"]
    quiet = next(t for t in report["tenants"] if not t["noisy"])
    assert quiet["throttled"] == 0 and quiet["errors"] == {}


def test_the_cli_prints_each_tenant_and_exits_1_on_a_leak(started, tmp_path):
    sim = started(scenario("tenants-fifo"))
    plan_file = tmp_path / "tenants.json"
    plan_file.write_text(json.dumps(PLAN))
    out_file = tmp_path / "out.json"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    options = vars(
        parser.parse_args(
            [
                sim.base_url,
                "--model",
                MODEL,
                "--max-tokens",
                "8",
                "--tenants",
                str(plan_file),
                "--allow-private",
                "--saturation-threshold-ms",
                "25",
                "--json",
                str(out_file),
            ]
        )
    )
    for _ in range(3):  # a saturated client proves nothing (exit 2): try again
        out, err = io.StringIO(), io.StringIO()
        code = cli.run(options, allow_private_default=False, out=out, err=err)
        if code != 2:
            break
    printed = out.getvalue()
    assert code == 1, printed
    assert "verdict: LEAKY" in printed and "quiet" in printed and "(noisy)" in printed
    assert json.loads(out_file.read_text())["verdict"] == LEAKY


def test_a_bad_tenants_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "tenants.json"
    bad.write_text(json.dumps({"tenants": [{"name": "a"}]}))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    options = vars(parser.parse_args(["http://127.0.0.1:9/v1", "--model", MODEL, "--tenants", str(bad)]))
    err = io.StringIO()
    assert cli.run(options, allow_private_default=True, out=io.StringIO(), err=err) == 2
    assert "--tenants: a noisy-neighbour plan needs 2 to 20 tenants" in err.getvalue()
