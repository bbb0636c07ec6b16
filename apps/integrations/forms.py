from django import forms

from apps.integrations.models import Event
from apps.integrations.services import SUBSCRIBABLE


class ConnectorForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(max_length=500, label="Webhook URL", help_text="Receives a signed POST per event.")
    project = forms.ModelChoiceField(queryset=None, required=False, empty_label="All projects of the organization")
    events = forms.MultipleChoiceField(
        choices=[(e, Event(e).label) for e in SUBSCRIBABLE], widget=forms.CheckboxSelectMultiple,
        initial=[Event.DECISION_CHANGED, Event.BLOCKER_FAILED, Event.SIGNOFF_STALE],
    )  # fmt: skip
    secret = forms.CharField(required=False, widget=forms.PasswordInput, label="Signing secret",
                             help_text="whsec_… — leave empty to generate one (new) or keep it (edit).")  # fmt: skip
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
