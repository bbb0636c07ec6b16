from django import forms

from apps.integrations.models import Event, Kind
from apps.integrations.services import SUBSCRIBABLE


class ConnectorForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name", help_text="How this connector is listed, e.g. ops-webhook.")
    kind = forms.ChoiceField(
        choices=Kind.choices,
        initial=Kind.WEBHOOK,
        required=False,
        label="Type",
        help_text="A signed webhook to your own receiver, or a ticketing system that gets one ticket per finding.",
    )
    url = forms.CharField(
        max_length=500,
        label="URL",
        help_text="Webhook: the receiving URL. Jira: https://your-site.atlassian.net. ServiceNow: "
        "https://instance.service-now.com. GitHub: https://api.github.com.",
    )
    config = forms.JSONField(
        required=False,
        label="Settings (JSON)",
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='Jira: {"email": "...", "project_key": "OPS", "issue_type": "Task", "done_transition_id": "31", '
        '"reopen_transition_id": "11"}. ServiceNow: {"table": "incident", "auth": "basic", "username": "..."}. '
        'GitHub: {"repo": "owner/name"}. Webhook: {}.',
    )
    project = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="All projects of the organization",
        label="Project",
        help_text="Only this project's events, or every project's.",
    )
    events = forms.MultipleChoiceField(
        choices=[(e, Event(e).label) for e in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        label="Events",
        help_text="What is sent to this connector.",
        initial=[Event.DECISION_CHANGED, Event.BLOCKER_FAILED, Event.SIGNOFF_STALE],
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        label="Secret",
        help_text="Webhook: whsec_… signing secret (empty: generated). Jira / GitHub: API "
        "token. ServiceNow: password or bearer token. Empty on edit keeps it, unless the "
        "URL moves to another origin (scheme, host, port): a webhook then gets a new "
        "secret, other kinds need their token again.",
    )
    active = forms.BooleanField(required=False, initial=True, label="Active (send deliveries)")

    def __init__(self, *args, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects

    def clean_config(self):
        return self.cleaned_data.get("config") or {}

    def clean_kind(self):
        return self.cleaned_data.get("kind") or Kind.WEBHOOK
