"""Named simulator set-ups; every field can be overridden from the command line."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from apps.simulator.tenancy import validate as validate_tenancy


@dataclass(frozen=True)
class SimConfig:
    model: str = "sim-llama-3-8b"
    api_key: str = ""  # when set, requests must send it as a bearer token
    # replicas and batching
    replicas: int = 1  # at start
    min_replicas: int = 1
    max_replicas: int = 1
    slots: int = 16  # concurrent sequences per replica
    # timing model (milliseconds)
    base_ttft_ms: float = 15.0  # scheduling + first decode step
    prefill_ms_per_1k_tokens: float = 30.0
    decode_ms_per_token: float = 10.0  # one decode step with a single sequence
    decode_slowdown_per_seq: float = 0.02  # step time grows 2 % per extra active sequence
    default_max_tokens: int = 64
    instant: bool = False  # no compute at all: measure the client's own ceiling
    # autoscaler (HPA-like: desired = ceil(ready * metric / target))
    autoscale: bool = False
    target_waiting_per_replica: float = 4.0
    decision_interval_s: float = 5.0
    cold_start_s: float = 20.0
    scale_down_window_s: float = 60.0
    # fault injection (shares of requests)
    fail_429: float = 0.0
    fail_500: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0
    drop: float = 0.0
    seed: int = 0
    ground_truth_limit: int = 1_000_000
    # strictness, as real servers have it
    strict_request_id: bool = False  # a non-UUID X-Request-Id gets 400 with an empty body (starlette-context)
    refuse_fields: str = ""  # comma-separated body fields answered with 400 (old Azure OpenAI: stream_options)
    # tenancy: several customers share the deployment (see apps/simulator/tenancy.py)
    tenant_header: str = "X-Tenant"  # names the tenant; without it a request belongs to "default"
    tenant_keys: str = ""  # "key:tenant,..." when set, the bearer key names the tenant and other keys get 401
    isolation: str = "fifo"  # fifo (one shared queue), bucket (per-tenant 429s at the gateway), fair (WFQ)
    tenant_rate: float = 0.0  # bucket: requests per second refilled per tenant
    tenant_burst: float = 0.0  # bucket: capacity per tenant
    tenant_weights: str = ""  # fair: "a:2,b:1"; unlisted tenants weigh 1

    def __post_init__(self):
        validate_tenancy(self)

    def with_overrides(self, **overrides) -> SimConfig:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown simulator parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


_SHARED_BY_TENANTS = dict(
    replicas=1,
    min_replicas=1,
    max_replicas=1,
    slots=4,
    base_ttft_ms=40.0,
    decode_ms_per_token=10.0,
    default_max_tokens=8,
)

SCENARIOS: dict[str, SimConfig] = {
    # Two fixed replicas: the default target of the demo, the tests and the accuracy benchmark.
    "steady": SimConfig(replicas=2, min_replicas=2, max_replicas=2, slots=16),
    # One replica to start, scaling on waiting requests, with a realistic cold start.
    "autoscaling": SimConfig(
        replicas=1,
        min_replicas=1,
        max_replicas=6,
        slots=8,
        autoscale=True,
        target_waiting_per_replica=4.0,
        decision_interval_s=5.0,
        cold_start_s=20.0,
        scale_down_window_s=60.0,
    ),
    # A steady deployment that misbehaves now and then.
    "flaky": SimConfig(
        replicas=2,
        min_replicas=2,
        max_replicas=2,
        slots=16,
        fail_429=0.02,
        fail_500=0.01,
        hang=0.005,
        malformed=0.01,
        drop=0.005,
    ),
    # A steady deployment behind a strict request-id middleware that also refuses `stream_options`:
    # the probe must send only what it accepts (a UUID id; the usage option dropped after a preflight).
    "strict": SimConfig(
        replicas=2, min_replicas=2, max_replicas=2, slots=16, strict_request_id=True, refuse_fields="stream_options"
    ),
    # Zero compute: every response is written at once. For measuring the probe client.
    "instant": SimConfig(replicas=1, min_replicas=1, max_replicas=1, slots=1_000_000, instant=True),
    # Tenants sharing one small replica: a 48-request burst from one of them queues ~1.5 s of work
    # (4 slots, ~125 ms a request), the noisy-neighbour case. The three differ only in isolation.
    "tenants-fifo": SimConfig(**_SHARED_BY_TENANTS),
    "tenants-bucket": SimConfig(**_SHARED_BY_TENANTS, isolation="bucket", tenant_rate=2.0, tenant_burst=4.0),
    "tenants-fair": SimConfig(**_SHARED_BY_TENANTS, isolation="fair"),
}


def scenario(name: str, **overrides) -> SimConfig:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name].with_overrides(**overrides)
