"""Seed price catalog: common GPUs and hosted-API models, as plain data.

These figures were written down from memory of public list prices, without network access,
so every entry says so: treat them as a starting point that an org edits, not as quotes.
GPU prices differ a lot by provider, region and commitment; each row names the provider
whose on-demand list price it approximates. Spot prices move daily; the figures are typical
levels, not offers. All prices are USD, per GPU-hour or per 1M tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

_VERIFY = "list price as of {as_of}, recalled without network access: verify before use"


@dataclass(frozen=True)
class GpuPrice:
    name: str
    usd_per_gpu_hour: float  # on-demand
    spot_usd_per_gpu_hour: float | None
    hbm_gb: int
    hbm_bandwidth_gb_per_s: int
    provider: str
    source: str
    as_of: date


@dataclass(frozen=True)
class ApiPrice:
    name: str
    provider: str
    usd_per_mtok_input: float
    usd_per_mtok_output: float
    source: str
    as_of: date


def _gpu(name, od, spot, hbm_gb, bw, provider, note, as_of) -> GpuPrice:
    return GpuPrice(name, od, spot, hbm_gb, bw, provider, f"{note}; {_VERIFY.format(as_of=as_of)}", as_of)


def _api(name, provider, usd_in, usd_out, note, as_of) -> ApiPrice:
    return ApiPrice(name, provider, usd_in, usd_out, f"{note}; {_VERIFY.format(as_of=as_of)}", as_of)


_GPU_DATE = date(2024, 10, 1)
_H100_DATE = date(2025, 6, 1)
_API_DATE = date(2024, 11, 1)

GPUS: tuple[GpuPrice, ...] = (
    _gpu("NVIDIA T4", 0.35, 0.12, 16, 320, "GCP", "GPU-only on-demand rate, us-central1", _GPU_DATE),
    _gpu("NVIDIA L4", 0.71, 0.28, 24, 300, "GCP", "g2-standard-4 (1× L4) on-demand, us-central1", _GPU_DATE),
    _gpu("NVIDIA A10G", 1.01, 0.40, 24, 600, "AWS", "g5.xlarge (1× A10G) on-demand, us-east-1", _GPU_DATE),
    _gpu("NVIDIA L40S", 1.86, 0.75, 48, 864, "AWS", "g6e.xlarge (1× L40S) on-demand, us-east-1", _GPU_DATE),
    _gpu("NVIDIA A100 40GB", 3.67, 1.10, 40, 1555, "GCP", "a2-highgpu-1g on-demand, us-central1", _GPU_DATE),
    _gpu("NVIDIA A100 80GB", 5.07, 1.60, 80, 2039, "GCP", "a2-ultragpu-1g on-demand, us-central1", _GPU_DATE),
    _gpu(
        "NVIDIA H100 80GB",
        6.88,
        2.50,
        80,
        3350,
        "AWS",
        "p5.48xlarge ÷ 8 GPUs after the mid-2025 price cut, us-east-1; neoclouds list ~$2–3",
        _H100_DATE,
    ),
    _gpu(
        "NVIDIA H200 141GB",
        4.00,
        None,
        141,
        4800,
        "neocloud",
        "typical GPU-cloud on-demand level; hyperscaler 8-GPU instances cost more",
        _H100_DATE,
    ),
)

HOSTED_MODELS: tuple[ApiPrice, ...] = (
    _api("gpt-4o", "OpenAI", 2.50, 10.00, "gpt-4o-2024-08-06, standard tier", _API_DATE),
    _api("gpt-4o-mini", "OpenAI", 0.15, 0.60, "standard tier", _API_DATE),
    _api("claude-3-5-sonnet", "Anthropic", 3.00, 15.00, "Claude 3.5 Sonnet", _API_DATE),
    _api("claude-3-5-haiku", "Anthropic", 0.80, 4.00, "Claude 3.5 Haiku", _API_DATE),
    _api("gemini-1.5-pro", "Google", 1.25, 5.00, "prompts up to 128K tokens (longer prompts cost 2×)", _API_DATE),
    _api("gemini-1.5-flash", "Google", 0.075, 0.30, "prompts up to 128K tokens (longer prompts cost 2×)", _API_DATE),
    _api("mistral-large", "Mistral", 2.00, 6.00, "mistral-large-2411, La Plateforme", _API_DATE),
)


def gpu(name: str) -> GpuPrice:
    """The catalog GPU whose name matches (case-insensitive, 'NVIDIA ' optional)."""
    wanted = name.lower().removeprefix("nvidia ").strip()
    for g in GPUS:
        if g.name.lower().removeprefix("nvidia ") == wanted:
            return g
    raise KeyError(name)


def hosted_model(name: str) -> ApiPrice:
    for m in HOSTED_MODELS:
        if m.name == name.lower():
            return m
    raise KeyError(name)
