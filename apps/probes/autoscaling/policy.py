"""The recommended autoscaler policy: the top-ranked signal and its threshold, an HPA `behavior`
block sized from the measured KPIs, and a KEDA ScaledObject, as dicts and as YAML to apply.
"""

from __future__ import annotations

import math
import re

import yaml

from apps.probes.autoscaling.kpis import ADDITIVE


def _query(name: str, model: str | None) -> str:
    selector = f'{{model_name="{model}"}}' if model and name.startswith("vllm:") else ""
    agg = "sum" if name in ADDITIVE else "avg"
    return f"{agg}({name}{selector})"


def _threshold_text(value: float, name: str) -> str:
    if name in ADDITIVE and value >= 1:
        return f"{math.floor(value * 10) / 10:g}"
    return f"{float(f'{value:.2g}'):g}"


def hpa_behavior(kpis: dict) -> tuple[dict, list[str]]:
    """An HPA `behavior` block sized from the measured T_ready and flaps, with the why."""
    why = []
    t_ready = kpis.get("t_ready_s")
    flaps = kpis.get("replica_flaps") or 0
    base = kpis.get("replicas_available_at_step") or kpis.get("replicas_desired_at_step") or 1
    top = kpis.get("replicas_desired_max") or base
    jump = max(1, int(top - base))
    scale_up = {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": jump, "periodSeconds": 15},
        ],
    }
    why.append(
        f"Scale up at once (no stabilisation, up to {jump} pod(s) or +100 % per 15 s): the step needed "
        f"{int(base)}→{int(top)} replicas, and each added replica took "
        + (f"{t_ready:g} s to become available." if t_ready is not None else "an unmeasured time to become ready.")
    )
    window = max(60.0, 2 * (t_ready or 30.0))
    if flaps:
        window *= 2
    window = min(600, int(math.ceil(window / 30) * 30))
    if flaps:
        scale_down = {
            "stabilizationWindowSeconds": window,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
        }
        why.append(
            f"The replica count reversed direction {flaps} time(s) within a load phase: a {window} s scale-down "
            "stabilisation window and at most one pod per 2 min going down."
        )
    else:
        scale_down = {
            "stabilizationWindowSeconds": window,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        }
        why.append(
            f"No flaps: scale down after a {window} s stabilisation window (about twice the time to get a "
            "replica back), at most half the pods per minute."
        )
    over = kpis.get("overprovisioned_replica_minutes")
    if over:
        why.append(f"After the step down {over:g} replica-minutes were paid above what the load needed.")
    return {"scaleUp": scale_up, "scaleDown": scale_down}, why


def k8s_name(text: str, fallback: str = "llm", max_length: int = 56) -> str:
    """A DNS-1123 label from a display name ("simulator (autoscaling)" -> "simulator-autoscaling"):
    what Kubernetes accepts as a resource name (56 leaves room for the "-scaler" suffix)."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_length].strip("-")
    return label or fallback


def recommend_policy(
    kpis: dict,
    ranking: list[dict],
    *,
    name: str = "llm",
    deployment: str = "llm",
    model: str | None = None,
    min_replicas: int = 1,
    max_replicas: int | None = None,
    server_address: str = "http://prometheus.monitoring.svc:9090",
) -> dict:
    """The top usable signal + threshold, a KEDA ScaledObject and an HPA behavior (dicts and YAML)."""
    reasoning: list[str] = []
    usable = [r for r in ranking if r["threshold"] is not None]
    for r in ranking:
        # A figure the analysis could not find reads "—", never Python's None.
        shown = {k: "—" if r.get(k) is None else r[k] for k in ("lead_s", "separation", "threshold")}
        reasoning.append(
            f"{r['signal']}{' per replica' if r['per_replica'] else ''}: score {r['score']:g} "
            f"(lead {shown['lead_s']} s, correlation with p95 TTFT {r['tightness']}, breach separation "
            f"{shown['separation']}, false positives {r['false_positive_rate']}, threshold {shown['threshold']})"
        )
    behavior, why = hpa_behavior(kpis)
    reasoning += why
    top = usable[0] if usable else None
    if top is None:
        reasoning.append("No scraped signal rose towards the latency breach: no metric can be recommended.")
        return {
            "signal": None,
            "threshold": None,
            "reasoning": reasoning,
            "hpa_behavior": behavior,
            "hpa_behavior_yaml": to_yaml({"behavior": behavior}),
            "keda": None,
            "keda_yaml": None,
        }
    signal = top["signal"]
    threshold = _threshold_text(top["threshold"], signal)
    lead = top["lead_s"]
    if lead is None:
        when = "it never reached that level during the breach"
    elif lead >= 0:
        when = f"it reached that {lead:g} s before the p95 TTFT breached {kpis['slo_ttft_p95_ms']:g} ms"
    else:
        when = (
            f"it reached that {-lead:g} s after the p95 TTFT breached {kpis['slo_ttft_p95_ms']:g} ms "
            "(no signal can lead a step this sharp; the threshold still acts as early as the data allows)"
        )
    reasoning.insert(
        0,
        f"Scale on {signal}{' per replica' if top['per_replica'] else ''} at {threshold}: {when}, and it tracks "
        f"the p95 TTFT with rank correlation {top['tightness']} (breach separation {top['separation']}).",
    )
    if len(ranking) > 1:
        worst = ranking[-1]
        reasoning.insert(1, f"Worst candidate: {worst['signal']} (score {worst['score']:g}).")
    reasoning.append(
        f"scaleTargetRef names the Deployment {k8s_name(deployment)!r} (the endpoint's name as a "
        "Kubernetes name): put your Deployment's name there."
    )
    top_replicas = max_replicas or int(max(kpis.get("replicas_desired_max") or 1, min_replicas) * 2)
    keda = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"{k8s_name(name)}-scaler"},
        "spec": {
            "scaleTargetRef": {"name": k8s_name(deployment)},
            "minReplicaCount": min_replicas,
            "maxReplicaCount": top_replicas,
            "pollingInterval": 5 if (kpis.get("t_ready_s") or 60) < 60 else 15,
            "cooldownPeriod": behavior["scaleDown"]["stabilizationWindowSeconds"],
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue" if signal in ADDITIVE else "Value",
                    "metadata": {
                        "serverAddress": server_address,
                        "query": _query(signal, model),
                        "threshold": threshold,
                    },
                }
            ],
        },
    }
    return {
        "signal": signal,
        "threshold": float(threshold),
        "reasoning": reasoning,
        "hpa_behavior": behavior,
        "hpa_behavior_yaml": to_yaml({"behavior": behavior}),
        "keda": keda,
        "keda_yaml": to_yaml(keda),
    }


def to_yaml(obj) -> str:
    """Block-style YAML for a manifest, keys in the order given (apiVersion, kind, metadata, spec).

    safe_dump quotes any string YAML would read as another type ("true", "9.8", "null"), so a
    threshold stays the string KEDA expects; no line is folded, so a long query stays on one line.
    """
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True, width=math.inf)
