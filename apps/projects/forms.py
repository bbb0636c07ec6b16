from django import forms

from apps.projects.models import Endpoint, PriceModel, Project


class ServiceModelForm(forms.ModelForm):
    """A ModelForm for rendering and field cleaning only.

    Saving, uniqueness and cross-field rules belong to the service (one set of rules for the
    API and the UI), and the instance is left untouched so the service sees stored values.
    """

    def _post_clean(self):
        pass


class ProjectForm(ServiceModelForm):
    slug = forms.SlugField(
        max_length=60,
        required=False,
        label="Short name (in links)",
        help_text="Letters, digits and hyphens. Leave empty to derive it from the name.",
    )

    class Meta:
        model = Project
        fields = [
            "name",
            "slug",
            "use_case",
            "stage",
            "risk_tier",
            "data_classification",
            "monthly_budget_usd",
            "expected_peak_rpm",
        ]
        widgets = {"use_case": forms.Textarea(attrs={"rows": 3})}
        labels = {
            "use_case": "Use case",
            "risk_tier": "Risk tier",
            "data_classification": "Data classification",
            "monthly_budget_usd": "Monthly budget (USD)",
            "expected_peak_rpm": "Expected peak (requests per minute)",
        }
        help_texts = {
            "use_case": "What the PoC does and for whom, in a sentence or two.",
            "stage": "Where the project stands: a proof of concept, a pilot with real users, or production.",
            "risk_tier": "How much harm a failure could do; higher tiers need more sign-offs.",
            "data_classification": "The most sensitive data the model sees in prompts or retrieved context.",
            "monthly_budget_usd": "What serving it may cost a month; the cost check compares the projection to it.",
            "expected_peak_rpm": "The busiest minute you expect in production; probes and capacity sizing use it.",
        }


class EndpointForm(ServiceModelForm):
    # render_value=False: a stored key is never sent back to the browser.
    api_key = forms.CharField(
        required=False,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the current key; a base URL on another origin "
        "(scheme, host, port) drops it unless you enter it here again.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    # Which price model each price field belongs to: the page shows only the chosen one's fields.
    SELF_HOSTED_FIELDS = ("gpu_type", "gpus_per_replica", "gpu_hourly_usd", "min_replicas", "max_replicas")
    HOSTED_API_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok")

    class Meta:
        model = Endpoint
        fields = [
            "name",
            "base_url",
            "api_flavour",
            "model_name",
            "api_key",
            "metrics_url",
            "price_model",
            "gpu_type",
            "gpus_per_replica",
            "gpu_hourly_usd",
            "min_replicas",
            "max_replicas",
            "input_usd_per_mtok",
            "output_usd_per_mtok",
            "request_id_header",
        ]
        labels = {
            "base_url": "Base URL",
            "api_flavour": "API",
            "model_name": "Model name",
            "metrics_url": "Metrics URL",
            "price_model": "Price model",
            "gpu_type": "GPU type",
            "gpus_per_replica": "GPUs per replica",
            "gpu_hourly_usd": "GPU price (USD per GPU-hour)",
            "min_replicas": "Minimum replicas",
            "max_replicas": "Maximum replicas",
            "input_usd_per_mtok": "Input price (USD per 1M tokens)",
            "output_usd_per_mtok": "Output price (USD per 1M tokens)",
            "request_id_header": "Request-id header",
        }
        help_texts = {
            "name": "A name for this endpoint within the project, e.g. vllm-l4 or hosted-gpt.",
            "base_url": "The OpenAI-compatible base URL, up to /v1, e.g. http://host:8000/v1.",
            "api_flavour": "Chat completions for chat models; completions for plain text models.",
            "model_name": "The model name the server expects in each request.",
            "metrics_url": "Optional: the server's Prometheus /metrics URL, read during probes.",
            "price_model": "Self-hosted: you pay for GPU hours. Hosted API: you pay per token.",
            "gpu_type": "Self-hosted: e.g. NVIDIA L4.",
            "gpus_per_replica": "Self-hosted: GPUs one serving replica uses.",
            "gpu_hourly_usd": "Self-hosted: what one GPU costs an hour.",
            "min_replicas": "Self-hosted: replicas always running.",
            "max_replicas": "Self-hosted: the most replicas autoscaling may start.",
            "input_usd_per_mtok": "Hosted API: the provider's price per million input tokens.",
            "output_usd_per_mtok": "Hosted API: the provider's price per million output tokens.",
            "request_id_header": "The header that carries each probe request's id; empty or “none” sends none.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            del self.fields["clear_api_key"]
        self.initial.pop("api_key", None)
        self.fields["price_model"].widget.attrs["data-toggles"] = "price_model"
        for name in self.SELF_HOSTED_FIELDS:
            self.fields[name].show_when = PriceModel.SELF_HOSTED
        for name in self.HOSTED_API_FIELDS:
            self.fields[name].show_when = PriceModel.HOSTED_API
