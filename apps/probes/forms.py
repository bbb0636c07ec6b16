import json

from django import forms

SECRET_FIELDS = ("tenant_keys", "clear_tenant_keys")  # never filled from the stored plan
EXAMPLE_PROFILE = {"stages": [{"kind": "poisson", "rate": 5, "duration": 60}]}


def slo_text(slo: dict) -> str:
    """The stored SLO dict as the text the form (and the CLI) accepts."""
    parts = []
    for key, name in (("ttft_p95_ms", "ttft_p95"), ("tpot_p95_ms", "tpot_p95"), ("e2e_p99_ms", "e2e_p99")):
        if slo.get(key) is not None:
            parts.append(f"{name}={slo[key]:g}ms")
    if slo.get("error_rate") is not None:
        parts.append(f"error_rate={slo['error_rate'] * 100:g}%")
    if slo.get("min_output_tps") is not None:
        parts.append(f"min_output_tps={slo['min_output_tps']:g}")
    return ",".join(parts)


class SecretTextarea(forms.Textarea):
    """Never renders what was typed: a secret sent back in a page stays in the browser's history."""

    def format_value(self, value):
        return None


class PlanForm(forms.Form):
    # The profile's JSON is the one field the server reads; the page's profile form (plan_form.js)
    # only writes it, so a plan the form cannot show still saves exactly as typed (expert mode).
    name = forms.CharField(max_length=120, label="Name")
    profile = forms.CharField(
        label="Load profile",
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        initial=json.dumps(EXAMPLE_PROFILE, indent=1),
        help_text='{"stages": [{"kind": "synchronous|concurrent|constant|poisson", "duration": s, "rate": r, '
        '"rate_end": r2, "concurrency": n}, ...]}, {"sweep": {"start_rate": r, "step_duration": s}} or '
        '{"autoscaling": {"base_rate": r, "base_s": s, "peak_rate": r2, "hold_s": s, "after_s": s}} or noisy '
        'neighbours: {"tenants": {"tenants": [{"name": "a", "stages": [...]}, {"name": "b", "burst": {"at": s, '
        '"requests": n, "over": s}}]}} (docs/probes.md)',
    )
    slo = forms.CharField(
        required=False,
        label="Service-level objectives (SLO)",
        help_text="e.g. ttft_p95=500ms,tpot_p95=50ms,e2e_p99=5s,error_rate=1%",
    )
    max_tokens = forms.IntegerField(min_value=1, initial=128, label="Max output tokens per request")
    prompt_tokens = forms.IntegerField(
        min_value=1, initial=256, label="Prompt length (tokens)", help_text="length of the synthetic prompts"
    )
    prompts_jsonl = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        label="Your prompts (JSONL, optional)",
        help_text='one per line: {"prompt": "..."}; empty: synthetic prompts',
    )
    warmup_s = forms.FloatField(
        min_value=0, initial=0, label="Warm-up (s)", help_text="measured results leave out the first seconds"
    )
    cooldown_s = forms.FloatField(min_value=0, initial=0, label="Cool-down (s)", help_text="and the last seconds")
    parallelism = forms.IntegerField(
        min_value=1, initial=1, label="Worker tasks", help_text="Celery tasks sharing the load (a sweep runs on one)"
    )
    metrics_url = forms.CharField(required=False, label="Metrics URL (Prometheus)", help_text="empty: the endpoint's")
    request_timeout_s = forms.FloatField(min_value=1, initial=60, label="Request timeout (s)")
    request_id_header = forms.CharField(
        required=False,
        max_length=100,
        label="Request-id header",
        help_text="each request's UUID goes in this header; empty: the endpoint's "
        "(X-Request-Id unless changed); none: no id",
    )
    seed = forms.IntegerField(initial=0, label="Random seed", help_text="the same seed sends the same schedule")
    schedule_cron = forms.CharField(required=False, label="Schedule (cron, UTC)", help_text="e.g. 0 6 * * 1-5")
    regression_threshold_pct = forms.FloatField(
        min_value=0,
        initial=20,
        label="Regression threshold (%)",
        help_text="a run is flagged, and a comparison coloured, only for changes beyond this",
    )

    tenant_keys = forms.CharField(
        required=False,
        label="Tenant keys (noisy-neighbour plans)",
        widget=SecretTextarea(attrs={"rows": 2, "class": "mono", "spellcheck": "false", "autocomplete": "off"}),
        help_text="one tenant per line, as name: key. Stored encrypted and never shown again; sent only to this "
        "endpoint's server. Empty keeps the stored keys.",
    )
    clear_tenant_keys = forms.BooleanField(required=False, label="Remove the stored tenant keys")

    def clean_tenant_keys(self):
        return self.cleaned_data["tenant_keys"].strip() or None  # None: keep what is stored

    def clean(self):
        data = super().clean()
        if data.pop("clear_tenant_keys", False):
            if data.get("tenant_keys"):
                self.add_error("tenant_keys", "Give new keys or remove the stored ones, not both.")
            else:
                data["tenant_keys"] = {}
        return data

    def forget_keys(self) -> None:
        """After a refusal the keys typed are not shown again (`SecretTextarea`): say they were not saved."""
        if (self.data.get("tenant_keys") or "").strip() and "tenant_keys" not in self.errors:
            self.add_error("tenant_keys", "Not saved: enter the keys again.")

    def clean_profile(self):
        try:
            return json.loads(self.cleaned_data["profile"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not JSON: {exc.msg} (line {exc.lineno}).") from None

    @classmethod
    def initial_from(cls, plan) -> dict:
        data = {name: getattr(plan, name) for name in cls.base_fields if name not in ("profile", "slo", *SECRET_FIELDS)}
        data["profile"] = json.dumps(plan.profile, indent=1)
        data["slo"] = slo_text(plan.slo)
        return data


class LimitsForm(forms.Form):
    max_concurrency = forms.IntegerField(min_value=1, required=False)
    max_rate = forms.FloatField(min_value=0.001, required=False, label="Max rate (req/s)")
    max_duration_s = forms.IntegerField(min_value=1, required=False, label="Max duration (s)")
    max_requests_per_day = forms.IntegerField(min_value=1, required=False)
    max_tokens_per_day = forms.IntegerField(min_value=1, required=False)
