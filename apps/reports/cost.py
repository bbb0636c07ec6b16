"""A first cost projection for the go/no-go decision (pure Python).

Method (DESIGN.md "Cost per token"), for the endpoint's measured configuration:
- self-hosted: $/1M output tokens = GPU $/h × GPUs per replica × replicas ÷ (SLO-compliant
  output tokens/s × 3600) × 10⁶, where the probed size is the endpoint's minimum replicas (1 if
  unset) and SLO-compliant tokens/s = output tokens/s × goodput ÷ throughput. The monthly figure
  is always-on (730 h) with enough replicas for the expected peak at the measured goodput per
  replica: an upper bound; schedules, autoscaling and spot come with the cost model.
- hosted API: the expected peak held all month (an upper bound), at the measured output tokens
  per request and the plan's prompt tokens, at the endpoint's $/1M input and output prices.
"""

from __future__ import annotations

import math

HOURS_PER_MONTH = 730


def project_cost(*, endpoint: dict, summary: dict | None, expected_peak_rpm: int | None,
                 prompt_tokens: int | None = None) -> dict | None:  # fmt: skip
    """{"projected_monthly_usd", "cost_per_1m_output_tokens_usd", "method", "notes"} or None
    when nothing can be said (no probe result)."""
    overall = (summary or {}).get("overall")
    if not overall or not overall.get("request_throughput"):
        return None
    rps, goodput = overall["request_throughput"], overall.get("goodput") or 0.0
    tokens_per_request = overall["output_token_throughput"] / rps if rps else 0.0
    good_tokens_per_s = tokens_per_request * goodput
    notes = []
    out = {"projected_monthly_usd": None, "cost_per_1m_output_tokens_usd": None, "notes": notes,
           "tokens_per_request": round(tokens_per_request, 1), "goodput_rps": goodput}  # fmt: skip
    if endpoint["price_model"] == "hosted_api":
        in_price, out_price = endpoint.get("input_usd_per_mtok"), endpoint.get("output_usd_per_mtok")
        if in_price is None or out_price is None:
            notes.append("the endpoint has no token prices")
            return out
        out["method"] = "hosted API, expected peak held all month (upper bound)"
        per_request = ((prompt_tokens or 0) * in_price + tokens_per_request * out_price) / 1e6
        out["cost_per_1m_output_tokens_usd"] = round(out_price, 4)
        if expected_peak_rpm:
            out["projected_monthly_usd"] = round(expected_peak_rpm * 60 * HOURS_PER_MONTH * per_request, 2)
        else:
            notes.append("set the project's expected peak (requests/min) to project a monthly cost")
        return out
    hourly, gpus = endpoint.get("gpu_hourly_usd"), endpoint.get("gpus_per_replica")
    if hourly is None or not gpus:
        notes.append("the endpoint has no GPU price")
        return out
    probed_replicas = endpoint.get("min_replicas") or 1
    out["method"] = "self-hosted, always-on at the replicas the expected peak needs (upper bound)"
    if good_tokens_per_s <= 0:
        notes.append("no request met the SLO: the cost per token is unbounded")
        return out
    out["cost_per_1m_output_tokens_usd"] = round(hourly * gpus * probed_replicas / (good_tokens_per_s * 3600) * 1e6, 4)
    if expected_peak_rpm:
        per_replica_rps = goodput / probed_replicas
        replicas = max(probed_replicas, math.ceil(expected_peak_rpm / 60 / per_replica_rps))
        out["replicas_at_peak"] = replicas
        out["projected_monthly_usd"] = round(replicas * gpus * hourly * HOURS_PER_MONTH, 2)
    else:
        notes.append("set the project's expected peak (requests/min) to project a monthly cost")
    return out
