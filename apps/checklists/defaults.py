"""The checklist templates readiness ships (version 1), written for GenAI services in production.

Plain data, no Django: the checklists app loads it into versioned templates; organizations
copy and adapt them. Each item: key (stable across versions), title, guidance (what good
evidence looks like), references, severity (blocker / major / minor), the function that owns
it, and its evidence kind: manual (a person attests with evidence), automatic (a rule over the
latest probe or cost figures, see rules.py), external (set over the API by another system).
"""

OWASP = "OWASP Top 10 for LLM Applications 2025"
NIST = "NIST AI RMF 1.0"
GENAI = "NIST AI 600-1 (Generative AI Profile)"
SRE = "Google SRE launch checklist"

VERSION = 1


def item(key, title, guidance, references, severity, function, kind="manual", rule=None):
    return {
        "key": key,
        "title": title,
        "guidance": guidance,
        "references": references,
        "severity": severity,
        "function": function,
        "evidence_kind": kind,
        "rule": rule,
    }


SECURITY = [
    item(
        "sec.prompt-injection",
        "Prompt injection is tested and contained",
        "A red-team run with direct and indirect (document, web, tool output) injections; results attached; the "
        "model's output cannot trigger privileged actions without a check outside the model.",
        [f"{OWASP}: LLM01 Prompt Injection", f"{GENAI}: Information Security"],
        "blocker",
        "security",
        "external",
    ),
    item(
        "sec.sensitive-data",
        "Sensitive data cannot leak through prompts, outputs or logs",
        "Data classification of inputs and outputs; PII/secret filtering on both; prompts and completions in logs "
        "are redacted or access-controlled; retention set.",
        [f"{OWASP}: LLM02 Sensitive Information Disclosure", f"{GENAI}: Data Privacy"],
        "blocker",
        "security",
    ),
    item(
        "sec.supply-chain",
        "Model and dependency provenance is recorded",
        "Model source, version and hash pinned; licence reviewed; serving stack images scanned; an SBOM/AI-BOM "
        "attached.",
        [f"{OWASP}: LLM03 Supply Chain", f"{NIST}: MAP 4.1"],
        "major",
        "security",
    ),
    item(
        "sec.poisoning",
        "Training, fine-tuning and retrieval data are controlled",
        "Who can change fine-tuning data and the retrieval corpus; review and rollback of corpus changes; "
        "provenance of third-party data.",
        [f"{OWASP}: LLM04 Data and Model Poisoning"],
        "major",
        "security",
    ),
    item(
        "sec.output-handling",
        "Model output is treated as untrusted input",
        "Output is encoded/escaped before HTML, SQL, shell or code execution; structured output is validated "
        "against a schema; evidence: the code paths and tests.",
        [f"{OWASP}: LLM05 Improper Output Handling"],
        "blocker",
        "engineering",
    ),
    item(
        "sec.agency",
        "Tools and actions follow least privilege",
        "Each tool the model can call is listed with its permissions; destructive actions need human "
        "confirmation; rate limits per tool.",
        [f"{OWASP}: LLM06 Excessive Agency"],
        "blocker",
        "security",
    ),
    item(
        "sec.system-prompt",
        "The system prompt holds no secrets and its leakage is harmless",
        "No credentials, internal URLs or policy logic that must stay secret in the system prompt; a test "
        "showing extraction attempts.",
        [f"{OWASP}: LLM07 System Prompt Leakage"],
        "major",
        "security",
    ),
    item(
        "sec.vector-store",
        "The vector store enforces tenant and document permissions",
        "Retrieval filters by the caller's permissions; embeddings of one tenant are not retrievable by another; "
        "inversion risk assessed.",
        [f"{OWASP}: LLM08 Vector and Embedding Weaknesses"],
        "blocker",
        "security",
    ),
    item(
        "sec.misinformation",
        "Answers are grounded or marked, and users can report errors",
        "Citations or grounding checks for factual answers; a visible disclaimer where appropriate; a feedback "
        "path that reaches the team.",
        [f"{OWASP}: LLM09 Misinformation", f"{GENAI}: Confabulation"],
        "major",
        "product",
    ),
    item(
        "sec.unbounded-consumption",
        "Per-user limits cap requests and tokens",
        "Per-user and per-tenant rate limits, max input and output tokens, and a global spend cap; evidence: "
        "the configuration and a test hitting the limit.",
        [f"{OWASP}: LLM10 Unbounded Consumption"],
        "blocker",
        "engineering",
    ),
    item(
        "sec.legal-review",
        "Terms, data processing and model licence are approved",
        "DPA with the model provider (if hosted), output ownership, user-facing terms; approval by legal.",
        [f"{NIST}: GOVERN 1.1", f"{GENAI}: Intellectual Property"],
        "blocker",
        "legal",
    ),
]

MONITORING = [
    item(
        "mon.golden-signals",
        "Latency, traffic, errors and saturation are on a dashboard",
        "TTFT, TPOT, E2E percentiles, request rate, error rate by class, queue depth and KV-cache usage, per "
        "model and endpoint; link to the dashboard.",
        [f"{SRE}: Monitoring", f"{NIST}: MEASURE 2.4"],
        "blocker",
        "engineering",
    ),
    item(
        "mon.server-metrics",
        "The inference server exports Prometheus metrics",
        "vLLM / TGI / llama.cpp metrics scraped; readiness can reach the metrics URL of each endpoint.",
        [f"{SRE}: Monitoring"],
        "major",
        "engineering",
    ),
    item(
        "mon.alerts",
        "Alerts page someone for SLO burn and outages",
        "Burn-rate alerts on the latency and availability SLOs, routed to an on-call rotation; a test alert fired.",
        [f"{SRE}: Monitoring, Alerting"],
        "blocker",
        "engineering",
    ),
    item(
        "mon.quality",
        "Answer quality is measured continuously",
        "An offline evaluation set run on every model/prompt change, and online signals (thumbs, escalations) tracked.",
        [f"{NIST}: MEASURE 2.5", f"{GENAI}: Confabulation"],
        "major",
        "product",
    ),
    item(
        "mon.drift",
        "Input and output drift are watched",
        "Distribution of prompt length, topics, refusal rate and output length compared with a baseline.",
        [f"{NIST}: MEASURE 3.1"],
        "minor",
        "engineering",
    ),
    item(
        "mon.tracing",
        "Requests are traced end to end",
        "A request id from the client through retrieval, tool calls and the model call; sampled traces kept.",
        [f"{SRE}: Monitoring"],
        "major",
        "engineering",
    ),
    item(
        "mon.audit-log",
        "Who used the model for what is auditable",
        "Access logs with user, time, model, token counts; retention agreed with legal.",
        [f"{GENAI}: Information Security", f"{NIST}: GOVERN 4.2"],
        "major",
        "security",
    ),
    item(
        "mon.incident-runbook",
        "An incident runbook covers model-specific failures",
        "Runbook entries for provider outage, latency spike, harmful output, prompt-injection incident; contacts.",
        [f"{SRE}: Incident response", f"{NIST}: MANAGE 4.3"],
        "major",
        "engineering",
    ),
]

COST = [
    item(
        "cost.within-budget",
        "Projected monthly cost is within budget",
        "Readiness projects the monthly cost from the measured throughput and the expected traffic; it must "
        "not exceed the project's budget.",
        ["FinOps: unit economics"],
        "blocker",
        "finance",
        "automatic",
        {"metric": "projected_monthly_usd", "op": "<=", "value": "budget"},
    ),
    item(
        "cost.budget-alerts",
        "Budgets with alerts are set at the provider",
        "A budget per project/environment with alerts at 50/80/100 %; recipients include finance.",
        ["FinOps: budgets and alerts"],
        "major",
        "finance",
    ),
    item(
        "cost.user-quotas",
        "Per-user quotas cap spend from a single user",
        "Daily token quotas per user and tenant; what happens when one is reached.",
        [f"{OWASP}: LLM10 Unbounded Consumption"],
        "major",
        "engineering",
    ),
    item(
        "cost.max-tokens",
        "max_tokens is capped on every call",
        "Every call sets max_tokens to what the feature needs; no unbounded generations.",
        [f"{OWASP}: LLM10 Unbounded Consumption"],
        "major",
        "engineering",
    ),
    item(
        "cost.price-table",
        "The price table used for projections is pinned and dated",
        "GPU $/hour or $/1M tokens with their source and date; stale prices are flagged.",
        ["FinOps: unit economics"],
        "minor",
        "finance",
    ),
    item(
        "cost.per-request",
        "Cost per request is projected at the target volume",
        "Cost per 1M output tokens from the SLO-compliant throughput, and per request at the expected peak "
        "and average traffic.",
        ["FinOps: unit economics"],
        "major",
        "finance",
    ),
    item(
        "cost.idle-gpu",
        "Idle GPU cost is allocated and minimised",
        "Scale-to-zero or scheduled capacity outside business hours considered; idle replica-hours allocated to "
        "the project.",
        ["FinOps: allocation"],
        "minor",
        "finance",
    ),
    item(
        "cost.hosted-alternative",
        "The hosted-API alternative has been priced",
        "Self-hosted vs hosted cost per 1M tokens compared at the expected traffic, with the SLOs.",
        ["FinOps: rate optimisation"],
        "minor",
        "finance",
    ),
]

RELIABILITY = [
    item(
        "rel.load-test",
        "Latency meets the SLO at 2x expected peak",
        "A readiness probe at twice the expected peak rate: p95 TTFT within target.",
        [f"{SRE}: Capacity planning", f"{NIST}: MEASURE 2.6"],
        "blocker",
        "engineering",
        "automatic",
        {"metric": "ttft_p95_ms", "op": "<=", "value": 800},
    ),
    item(
        "rel.error-rate",
        "Error rate under load is below 1 %",
        "The latest probe's error rate (timeouts, 5xx, 429, malformed) below 1 %.",
        [f"{SRE}: Reliability"],
        "blocker",
        "engineering",
        "automatic",
        {"metric": "error_rate", "op": "<", "value": 0.01},
    ),
    item(
        "rel.tpot",
        "Generation speed meets its target",
        "p95 time per output token within 50 ms, so streamed answers read fluently.",
        [f"{SRE}: Reliability"],
        "major",
        "engineering",
        "automatic",
        {"metric": "tpot_p95_ms", "op": "<=", "value": 50},
    ),
    item(
        "rel.slos",
        "SLOs are written down and agreed",
        "Latency (TTFT, E2E) and availability SLOs with their measurement, agreed with product.",
        [f"{SRE}: SLOs"],
        "blocker",
        "product",
    ),
    item(
        "rel.capacity",
        "Capacity and autoscaling are planned",
        "Replica count at peak, autoscaling metric and thresholds, cold-start time, GPU quota confirmed.",
        [f"{SRE}: Capacity planning"],
        "major",
        "engineering",
    ),
    item(
        "rel.rollback",
        "A model or prompt change can be rolled back in minutes",
        "Versioned prompts and model configs; a tested rollback; canary or shadow for changes.",
        [f"{SRE}: Rollouts and rollback", f"{NIST}: MANAGE 2.4"],
        "blocker",
        "engineering",
    ),
    item(
        "rel.fallback",
        "The feature degrades gracefully when the model is down",
        "Timeouts, retries with backoff, a fallback model or a non-AI path; the user sees a clear message.",
        [f"{SRE}: Graceful degradation"],
        "major",
        "engineering",
    ),
    item(
        "rel.dependencies",
        "Dependencies and their limits are known",
        "Provider rate limits and quotas, vector store, tool APIs; what happens when each fails.",
        [f"{SRE}: Dependencies"],
        "major",
        "engineering",
    ),
    item(
        "rel.human-oversight",
        "A human can override or stop the system",
        "Kill switch, human review for high-risk outputs, escalation path.",
        [f"{NIST}: MANAGE 2.3", f"{GENAI}: Human-AI Configuration"],
        "major",
        "product",
    ),
]

# For a deployment that several customers or teams share: not required by default (an org adds
# "tenancy" to its required categories when its endpoints are shared).
TENANCY = [
    item(
        "ten.isolation",
        "Tenants are isolated under a noisy neighbour",
        "A noisy-neighbour probe run: one tenant bursts while the others keep their own traffic, and each "
        "quiet tenant's p95 TTFT and error rate stay within the plan's limits of its own baseline.",
        [f"{OWASP}: LLM10 Unbounded Consumption", f"{SRE}: Overload"],
        "blocker",
        "engineering",
        "automatic",
        {"metric": "tenants_isolated", "op": ">=", "value": 1},
    ),
    item(
        "ten.quotas",
        "Every tenant has a rate limit and a token quota",
        "Per-tenant requests per minute and tokens per day at the gateway; what a tenant over its share gets "
        "(429 with Retry-After) is documented for its developers.",
        [f"{OWASP}: LLM10 Unbounded Consumption"],
        "blocker",
        "engineering",
    ),
    item(
        "ten.credentials",
        "Each tenant has credentials of its own, revocable alone",
        "One key (or token audience) per tenant, rotated on a schedule; revoking one tenant leaves the others working.",
        [f"{OWASP}: LLM02 Sensitive Information Disclosure"],
        "blocker",
        "security",
    ),
    item(
        "ten.data",
        "No tenant can see another tenant's data",
        "Prompts, retrieved documents, caches (prompt and KV prefix caches included), logs and fine-tunes are "
        "scoped per tenant; a test shows one tenant cannot retrieve or infer another's content.",
        [f"{OWASP}: LLM02 Sensitive Information Disclosure", f"{GENAI}: Data Privacy"],
        "blocker",
        "security",
    ),
    item(
        "ten.metering",
        "Usage and cost are metered per tenant",
        "Tokens and requests are attributed to the tenant that sent them, and the totals reconcile with the "
        "provider's invoice within an agreed tolerance.",
        [f"{NIST}: GOVERN 1.5"],
        "major",
        "finance",
    ),
    item(
        "ten.monitoring",
        "Latency, errors and throttling are watched per tenant",
        "Dashboards and alerts by tenant (p95 TTFT, error rate, 429s), so one tenant's incident is seen as "
        "theirs and not averaged away.",
        [f"{SRE}: Monitoring"],
        "major",
        "engineering",
    ),
    item(
        "ten.scheduling",
        "The scheduling policy between tenants is written down",
        "FIFO, per-tenant token buckets, priorities or weighted fair queueing: which one, with which weights, "
        "and who may change them.",
        [f"{SRE}: Capacity planning"],
        "minor",
        "engineering",
    ),
    item(
        "ten.runbook",
        "A runbook says how to contain a noisy tenant",
        "Who throttles, suspends or moves a tenant during an incident, how the tenant is told, and how it is restored.",
        [f"{SRE}: Incident response"],
        "major",
        "product",
    ),
]

TEMPLATES = {
    "security": {"title": "Security and legal", "items": SECURITY},
    "monitoring": {"title": "Monitoring and observability", "items": MONITORING},
    "cost": {"title": "Cost", "items": COST},
    "reliability": {"title": "Reliability and load", "items": RELIABILITY},
    "tenancy": {"title": "Shared deployment (tenants)", "items": TENANCY},
}
