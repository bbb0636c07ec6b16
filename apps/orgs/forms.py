from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.db import transaction

from apps.core.login_throttle import ThrottledLoginMixin
from apps.orgs.models import Function, Role, TokenScope
from apps.orgs.tasks import password_reset_mail_task


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    """Django's log-in form, throttled per username and per address (apps/core/login_throttle.py).
    While a lock holds, the password is not checked at all."""


class PasswordResetRequestForm(PasswordResetForm):
    """Queues the reset mail instead of sending it inside the request: looking up the accounts and
    mailing them would make the answer slower exactly when an account has the address."""

    def save(self, **kwargs) -> None:
        email = self.cleaned_data["email"]
        transaction.on_commit(lambda: password_reset_mail_task.delay(email))


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    slug = forms.SlugField(
        max_length=60,
        required=False,
        label="Short name (in links)",
        help_text="Letters, digits and hyphens. Leave empty to derive it from the name.",
    )


class MembershipForm(forms.Form):
    role = forms.ChoiceField(
        choices=Role.choices,
        label="Role",
        help_text="Viewers read; members also answer, probe and decide; admins and owners also manage "
        "the organization.",
    )
    functions = forms.MultipleChoiceField(
        choices=Function.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Functions",
        help_text="The sign-off gates and checklist items this person answers for.",
    )


class MembershipAddForm(MembershipForm):
    username = forms.CharField(max_length=150, label="Username")
    field_order = ["username", "role", "functions"]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name", help_text="What uses the token, e.g. ci-pipeline.")
    scope = forms.ChoiceField(choices=TokenScope.choices, label="Scope")
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        label="Expires at (UTC)",
        help_text="Optional: leave empty for a token that does not expire.",
    )
