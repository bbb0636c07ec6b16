"""The answer and waiver forms of a checklist page: labels, and the fields a refusal is shown at.

The services keep the rules (one set for the page and the API); these forms only render, carry
what the person typed back to them after a refusal, and turn text into types.
"""

from django import forms

from apps.checklists.models import RiskLevel, Status


class ItemFormMixin:
    """Several items' forms share a page: ids carry the response's pk so labels stay unique."""

    def __init__(self, *args, response, **kwargs):
        kwargs.setdefault("auto_id", f"id_r{response.pk}_%s")
        super().__init__(*args, **kwargs)
        self.response = response


class AnswerForm(ItemFormMixin, forms.Form):
    status = forms.ChoiceField(label="Status", choices=Status.choices)
    evidence_text = forms.CharField(
        label="Evidence note",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What shows the item is met: a test, a config, a decision. A pass needs a note, a link or a file.",
    )
    # A CharField: the service checks the link (http or https only) and says so at this field.
    evidence_url = forms.CharField(
        label="Evidence link", required=False, widget=forms.URLInput(attrs={"placeholder": "https://…"})
    )
    evidence_file = forms.FileField(label="Evidence file", required=False)
    na_reason = forms.CharField(label="Why not applicable", required=False, help_text="Required for “Not applicable”.")

    def __init__(self, *args, response, max_upload_mb: int | None = None, **kwargs):
        super().__init__(*args, response=response, **kwargs)
        if not self.is_bound:
            self.initial = {
                "status": response.status,
                "evidence_text": response.evidence_text,
                "evidence_url": response.evidence_url,
                "na_reason": response.na_reason,
            }
        if max_upload_mb:
            self.fields["evidence_file"].help_text = f"At most {max_upload_mb} MB."


class WaiverRequestForm(ItemFormMixin, forms.Form):
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the item can be exempted for now, and what replaces it meanwhile.",
    )
    risk_level = forms.ChoiceField(label="Risk", choices=RiskLevel.choices, initial=RiskLevel.MEDIUM)
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The waiver lapses on this day; at most a year ahead.",
        error_messages={"invalid": "Give the expiry as a date."},
    )
