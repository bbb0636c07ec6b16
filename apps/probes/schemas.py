"""OpenAPI schemas of a plan's `profile` and `slo`: what the API documents (and the schema fuzzer
generates from) is what plans.validate_plan accepts, instead of an opaque JSON value. The
validation itself stays in plans.py, with its messages; these describe its shapes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.probes.engine.profiles import KINDS
from apps.probes.plans import AUTOSCALING_OPTIONAL, AUTOSCALING_REQUIRED, SLO_FIELDS

NUMBER = {"type": "number", "minimum": 0}
OPTIONAL_NUMBER = {**NUMBER, "nullable": True}

STAGE = {
    "type": "object",
    "required": ["kind", "duration"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "duration": {**NUMBER, "description": "seconds"},
        "rate": {**OPTIONAL_NUMBER, "description": "requests/s (constant, poisson)"},
        "rate_end": {**OPTIONAL_NUMBER, "description": "requests/s at the end of a ramp"},
        "concurrency": {"type": "integer", "minimum": 1, "nullable": True},
        "name": {"type": "string"},
    },
}
SWEEP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "start_rate": OPTIONAL_NUMBER,
        "growth": NUMBER,
        "step_duration": NUMBER,
        "step_warmup": NUMBER,
        "max_steps": {"type": "integer", "minimum": 1},
        "refine_steps": {"type": "integer", "minimum": 0},
        "kind": {"type": "string", "enum": ["constant", "poisson"]},
        "keep_up": NUMBER,
        "max_rate": OPTIONAL_NUMBER,
    },
}
AUTOSCALING = {
    "type": "object",
    "required": list(AUTOSCALING_REQUIRED),
    "additionalProperties": False,
    "properties": {
        **{name: NUMBER for name in AUTOSCALING_REQUIRED + AUTOSCALING_OPTIONAL if name != "capacity_source"},
        "capacity_source": {"type": "string"},
    },
}
TENANTS = {
    "type": "object",
    "required": ["tenants"],
    "additionalProperties": False,
    "properties": {
        "header": {"type": "string", "description": 'the header naming the tenant (default "X-Tenant"); "" for none'},
        "isolation": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"ttft_increase_pct": NUMBER, "error_rate_increase": NUMBER},
        },
        "tenants": {
            "type": "array",
            "minItems": 2,
            "maxItems": 20,
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "stages": {"type": "array", "items": STAGE},
                    "header": {"type": "string", "description": "the tenant header's value (default: the name)"},
                    "prompt_tokens": {"type": "integer", "minimum": 1, "description": "its own prompt length"},
                    "max_tokens": {"type": "integer", "minimum": 1, "description": "its own output limit"},
                    "burst": {
                        "type": "object",
                        "required": ["at", "requests"],
                        "additionalProperties": False,
                        "properties": {"at": NUMBER, "requests": {"type": "integer", "minimum": 1}, "over": NUMBER},
                    },
                },
            },
        },
    },
}
PROFILE = {
    "oneOf": [
        {
            "type": "object",
            "required": ["stages"],
            "additionalProperties": False,
            "properties": {"stages": {"type": "array", "minItems": 1, "items": STAGE}},
        },
        {"type": "object", "required": ["sweep"], "additionalProperties": False, "properties": {"sweep": SWEEP}},
        {
            "type": "object",
            "required": ["autoscaling"],
            "additionalProperties": False,
            "properties": {"autoscaling": AUTOSCALING},
        },
        {"type": "object", "required": ["tenants"], "additionalProperties": False, "properties": {"tenants": TENANTS}},
    ],
    "description": 'A list of stages, a sweep, an autoscaling step or noisy neighbours: {"stages": [{"kind": '
    '"poisson", "rate": 5, "duration": 60}]}, {"sweep": {"start_rate": 2}}, {"autoscaling": {...}}, '
    '{"tenants": {"tenants": [{"name": "a", "stages": [...]}, {"name": "b", "burst": {"at": 60, "requests": 50}}]}}',
}
SLO_OBJECT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {name: {**OPTIONAL_NUMBER} for name in SLO_FIELDS},
    "description": "latency targets in ms; error_rate a fraction (0.01 = 1 %); min_output_tps tokens/s",
}
SLO = {"oneOf": [SLO_OBJECT, {"type": "string", "description": 'the CLI\'s form: "ttft_p95=500ms,error_rate=1%"'}]}


@extend_schema_field(PROFILE)
class ProfileField(serializers.JSONField):
    pass


@extend_schema_field(SLO)
class SLOField(serializers.JSONField):
    pass
