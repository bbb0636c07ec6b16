from django import forms

from apps.costs.models import Price, TrafficProfile


class TrafficForm(forms.ModelForm):
    class Meta:
        model = TrafficProfile
        fields = [
            "requests_per_day", "input_tokens_per_request", "output_tokens_per_request", "peak_to_average",
            "active_hours_per_day", "active_start_hour", "active_days_per_month", "min_replicas", "scale_down_delay_s",
            "scale_up_lead_s", "business_hours_per_day", "business_days_per_month", "business_start_hour",
            "spot_headroom_replicas",
        ]  # fmt: skip


class PriceForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = ["name", "provider", "usd_per_gpu_hour", "spot_usd_per_gpu_hour", "hbm_gb", "hbm_bandwidth_gb_per_s",
                  "usd_per_mtok_input", "usd_per_mtok_output", "source", "as_of"]  # fmt: skip
        widgets = {"as_of": forms.DateInput(attrs={"type": "date"})}
