from django import forms

from apps.costs.models import Price, PriceKind, TrafficProfile


class TrafficForm(forms.ModelForm):
    class Meta:
        model = TrafficProfile
        fields = [
            "requests_per_day",
            "input_tokens_per_request",
            "output_tokens_per_request",
            "peak_to_average",
            "active_hours_per_day",
            "active_start_hour",
            "active_days_per_month",
            "min_replicas",
            "scale_down_delay_s",
            "scale_up_lead_s",
            "business_hours_per_day",
            "business_days_per_month",
            "business_start_hour",
            "spot_headroom_replicas",
        ]
        labels = {
            "requests_per_day": "Requests per day",
            "input_tokens_per_request": "Input tokens per request (average)",
            "output_tokens_per_request": "Output tokens per request (average)",
            "peak_to_average": "Peak-to-average ratio",
            "active_hours_per_day": "Active hours per day",
            "active_start_hour": "Active hours start at (hour of day, 0–24)",
            "active_days_per_month": "Active days per month",
            "min_replicas": "Minimum replicas",
            "scale_down_delay_s": "Scale-down delay (seconds)",
            "scale_up_lead_s": "Time a new replica takes to be ready (seconds)",
            "business_hours_per_day": "Business hours per day",
            "business_days_per_month": "Business days per month",
            "business_start_hour": "Business hours start at (hour of day, 0–24)",
            "spot_headroom_replicas": "Spot headroom (extra replicas)",
        }
        help_texts = {
            "requests_per_day": "Expected requests on an active day in production.",
            "peak_to_average": "The busiest minute over the average minute of the active hours; 3 is common.",
            "active_hours_per_day": "Hours a day the service gets traffic (24 for always on).",
            "active_days_per_month": "30.4 for every day; about 22 for working days only.",
            "min_replicas": "Self-hosted: replicas kept running even when idle.",
            "scale_down_delay_s": "Self-hosted: how long autoscaling waits before removing an idle replica.",
            "scale_up_lead_s": "Self-hosted: from the decision to scale up until the replica serves (T_ready).",
            "business_hours_per_day": "For the “business hours only” option: hours a day replicas run.",
            "business_days_per_month": "For the “business hours only” option: days a month replicas run.",
            "spot_headroom_replicas": "For the spot option: replicas added to ride out a preemption.",
        }


class PriceForm(forms.ModelForm):
    """A price of the catalog. Only the fields of its kind are shown: a GPU has hourly prices and
    memory, a hosted API per-token prices."""

    GPU_FIELDS = ("usd_per_gpu_hour", "spot_usd_per_gpu_hour", "hbm_gb", "hbm_bandwidth_gb_per_s")
    API_FIELDS = ("usd_per_mtok_input", "usd_per_mtok_output")

    class Meta:
        model = Price
        fields = [
            "name",
            "provider",
            "usd_per_gpu_hour",
            "spot_usd_per_gpu_hour",
            "hbm_gb",
            "hbm_bandwidth_gb_per_s",
            "usd_per_mtok_input",
            "usd_per_mtok_output",
            "source",
            "as_of",
        ]
        widgets = {"as_of": forms.DateInput(attrs={"type": "date"})}
        labels = {
            "usd_per_gpu_hour": "On-demand price (USD per GPU-hour)",
            "spot_usd_per_gpu_hour": "Spot price (USD per GPU-hour)",
            "hbm_gb": "GPU memory (GB)",
            "hbm_bandwidth_gb_per_s": "Memory bandwidth (GB/s)",
            "usd_per_mtok_input": "Input price (USD per 1M tokens)",
            "usd_per_mtok_output": "Output price (USD per 1M tokens)",
            "source": "Source",
            "as_of": "Price as of",
        }
        help_texts = {
            "provider": "Cloud or API vendor, e.g. AWS or OpenAI.",
            "usd_per_gpu_hour": "Self-hosted: what one GPU costs an hour on demand.",
            "spot_usd_per_gpu_hour": "Self-hosted: the spot / preemptible price, if any.",
            "hbm_gb": "Self-hosted: memory of one GPU; sizes how many replicas fit a model.",
            "hbm_bandwidth_gb_per_s": "Self-hosted: bounds decode speed.",
            "usd_per_mtok_input": "Hosted API: price per million input (prompt) tokens.",
            "usd_per_mtok_output": "Hosted API: price per million output (generated) tokens.",
            "source": "Where the figure comes from: a pricing page URL or a quote.",
            "as_of": "When the price was checked; old prices are flagged stale.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        other = self.API_FIELDS if self.instance.kind == PriceKind.GPU else self.GPU_FIELDS
        for name in other:
            del self.fields[name]


class EndpointPlanForm(forms.Form):
    """A plan made from a usage log on one of its project's endpoints. The service checks the
    values (positive, within the org's probe limits); a refusal comes back on this form, as typed."""

    endpoint = forms.ModelChoiceField(queryset=None, label="Endpoint", empty_label=None)

    def __init__(self, *args, endpoints, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = endpoints
        # A chosen endpoint that is not in the list reads as the service words it, at the field.
        self.fields["endpoint"].error_messages["invalid_choice"] = "Choose an endpoint of this log's project."


class ReplayForm(EndpointPlanForm):
    """Replay a usage log's busiest hour."""

    scale = forms.FloatField(label="Scale (× the log's rate)", initial=1)
    seconds_per_minute = forms.FloatField(
        label="Seconds per minute", initial=6, help_text="How long each of the log's minutes is played."
    )


class TenantsReplayForm(EndpointPlanForm):
    """A noisy-neighbour plan from a usage log."""

    scale = forms.FloatField(
        label="Scale (× the log's rates)",
        initial=1,
        help_text="A quiet tenant needs at least 5 requests before and during the burst: scale a sparse log up.",
    )
    quiet = forms.IntegerField(
        label="Quiet tenants",
        initial=1,
        min_value=1,
        help_text="Each tenant runs on a probe-worker process of its own, all at once.",
    )
