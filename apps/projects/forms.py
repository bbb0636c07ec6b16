from django import forms

from apps.projects.models import Endpoint, Project


class ServiceModelForm(forms.ModelForm):
    """A ModelForm for rendering and field cleaning only.

    Saving, uniqueness and cross-field rules belong to the service (one set of rules for the
    API and the UI), and the instance is left untouched so the service sees stored values.
    """

    def _post_clean(self):
        pass


class ProjectForm(ServiceModelForm):
    slug = forms.SlugField(max_length=60, required=False, help_text="Leave empty to derive it from the name.")

    class Meta:
        model = Project
        fields = [
            "name", "slug", "use_case", "stage", "risk_tier", "data_classification",
            "monthly_budget_usd", "expected_peak_rpm",
        ]  # fmt: skip
        widgets = {"use_case": forms.Textarea(attrs={"rows": 3})}


class EndpointForm(ServiceModelForm):
    # render_value=False: a stored key is never sent back to the browser.
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the current key; a base URL on another origin "
        "(scheme, host, port) drops it unless you enter it here again.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = Endpoint
        fields = [
            "name", "base_url", "api_flavour", "model_name", "api_key", "metrics_url",
            "price_model", "gpu_type", "gpus_per_replica", "gpu_hourly_usd", "min_replicas",
            "max_replicas", "input_usd_per_mtok", "output_usd_per_mtok", "request_id_header",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            del self.fields["clear_api_key"]
        self.initial.pop("api_key", None)
