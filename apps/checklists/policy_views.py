"""The readiness policy page: which checklist categories every project needs."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.views.generic import FormView

from apps.checklists.policy import known_categories, organization_policy_update
from apps.core.errors import ApplicationError
from apps.orgs.mixins import OrgMixin, form_error_from


class ReadinessPolicyForm(forms.Form):
    required_checklist_categories = forms.MultipleChoiceField(
        label="Checklists every project needs",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A project without a checklist of each of these categories is NO-GO. "
        "A project with no checklist at all is always NO-GO.",
    )

    def __init__(self, *args, categories: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["required_checklist_categories"].choices = [(c, c.capitalize()) for c in categories]


class ReadinessPolicyView(OrgMixin, FormView):
    """Everyone in the organization reads the policy; owners and admins change it."""

    template_name = "checklists/readiness_policy.html"
    form_class = ReadinessPolicyForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "categories": known_categories(self.org)}

    def get_initial(self):
        return {"required_checklist_categories": list(self.org.required_checklist_categories or [])}

    def post(self, request, *args, **kwargs):
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins can change the readiness policy.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            categories = form.cleaned_data["required_checklist_categories"]
            organization_policy_update(
                access=self.access, organization=self.org, required_checklist_categories=categories
            )
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Readiness policy saved; every project was re-evaluated.")
        return redirect("readiness-policy", org_slug=self.org.slug)
