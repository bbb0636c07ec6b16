from django import forms

from apps.orgs.models import Function, Role, TokenScope


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, required=False, help_text="Leave empty to derive it from the name.")


class MembershipForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    functions = forms.MultipleChoiceField(choices=Function.choices, required=False, widget=forms.CheckboxSelectMultiple)


class MembershipAddForm(MembershipForm):
    username = forms.CharField(max_length=150)
    field_order = ["username", "role", "functions"]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=TokenScope.choices)
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional; UTC.",
    )
