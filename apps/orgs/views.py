from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.generic import FormView, TemplateView, View

from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.orgs import services
from apps.orgs.access import request_access
from apps.orgs.forms import (
    ApiTokenForm,
    LoginForm,
    MembershipAddForm,
    MembershipForm,
    OrganizationForm,
    PasswordResetRequestForm,
)
from apps.orgs.invitations import invitation_create, invitations_for
from apps.orgs.mixins import CURRENT_ORG_SESSION_KEY, OrgMixin, form_error_from
from apps.orgs.models import Invitation
from apps.orgs.selectors import api_token_list, membership_list, organization_list


class LoginView(auth_views.LoginView):
    """Django's log-in, throttled (apps/core/login_throttle.py): a locked username or address
    answers 429 with the form and a message saying when to try again."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="throttled"):
            response.status_code = 429
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by email, with the same answer, in the same time, whether or not an account
    has the address: the mail is queued (apps.orgs.tasks) and goes only to active accounts that
    have it, with a link on READINESS_BASE_URL, never on the Host header of the request."""

    form_class = PasswordResetRequestForm


@login_required
def home(request):
    """Send the user to the organization they used last, or their first one."""
    orgs = list(organization_list(access=request_access(request)))
    if not orgs:  # someone invited to an organization sees the invitation before the form for a new one
        return redirect("invitations" if invitations_for(request.user).exists() else "org-create")
    last = request.session.get(CURRENT_ORG_SESSION_KEY)
    org = next((o for o in orgs if o.slug == last), orgs[0])
    return redirect("dashboard", org_slug=org.slug)


class OrganizationCreateView(LoginRequiredMixin, FormView):
    template_name = "orgs/organization_form.html"
    form_class = OrganizationForm

    def form_valid(self, form):
        try:
            org = services.organization_create(owner=self.request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Organization {org.name} created.")
        return redirect("dashboard", org_slug=org.slug)


class MemberListView(OrgMixin, FormView):
    template_name = "orgs/members.html"
    form_class = MembershipAddForm

    def get_context_data(self, **kwargs):
        pending = Invitation.objects.in_org(self.org.pk).filter(status="pending").select_related("invited_by")
        return super().get_context_data(
            memberships=membership_list(access=self.access, org_id=self.org.pk),
            invitations=pending if self.access.can_admin(self.org.pk) else [],
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins can invite members.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            invitation_create(access=self.access, org=self.org, **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        # The same words whether or not the username exists: the form finds out nothing about accounts.
        who = form.cleaned_data["username"]
        messages.success(
            self.request,
            f"Invitation recorded for {who}: if an account has that username, its "
            "owner sees it after logging in and can accept it.",
        )
        return redirect("members", org_slug=self.org.slug)


class MemberEditView(OrgMixin, FormView):
    template_name = "orgs/member_form.html"
    form_class = MembershipForm
    admin_required = True

    def get_membership(self):
        return get_object_or_404(membership_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def get_initial(self):
        m = self.get_membership()
        return {"role": m.role, "functions": m.functions}

    def get_context_data(self, **kwargs):
        return super().get_context_data(membership=self.get_membership(), **kwargs)

    def form_valid(self, form):
        try:
            services.membership_update(access=self.access, membership=self.get_membership(), **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Membership updated.")
        return redirect("members", org_slug=self.org.slug)


class MemberRemoveView(OrgMixin, View):
    admin_required = True

    def post(self, request, org_slug, pk):
        membership = get_object_or_404(membership_list(access=self.access, org_id=self.org.pk), pk=pk)
        try:
            services.membership_remove(access=self.access, membership=membership)
            messages.success(request, f"{membership.user.username} removed.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("members", org_slug=self.org.slug)


# never_cache: a new token's secret is in the page; no browser or proxy cache may keep a copy.
@method_decorator(never_cache, name="dispatch")
class TokenListView(OrgMixin, FormView):
    """Tokens of the organization; a new token's secret is shown once, in the POST's response."""

    template_name = "orgs/tokens.html"
    form_class = ApiTokenForm
    admin_required = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(tokens=api_token_list(access=self.access, org_id=self.org.pk), **kwargs)

    @method_decorator(sensitive_variables())  # the new token, in clear
    def form_valid(self, form):
        try:
            token, plaintext = services.api_token_create(access=self.access, org=self.org, **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        return self.render_to_response(
            self.get_context_data(form=ApiTokenForm(), new_token=token, new_token_plaintext=plaintext)
        )


class TokenRevokeView(OrgMixin, View):
    admin_required = True

    def post(self, request, org_slug, pk):
        token = get_object_or_404(api_token_list(access=self.access, org_id=self.org.pk), pk=pk)
        services.api_token_revoke(access=self.access, token=token)
        messages.success(request, f"Token {token.name} revoked.")
        return redirect("tokens", org_slug=self.org.slug)


@method_decorator(never_cache, name="dispatch")
class PersonalTokenListView(OrgMixin, FormView):
    """Every member's own tokens: they act as the member, so people can sign and attest over the API."""

    template_name = "orgs/tokens.html"
    form_class = ApiTokenForm

    def get_context_data(self, **kwargs):
        mine = api_token_list(access=self.access, org_id=self.org.pk).filter(acts_for=self.request.user)
        return super().get_context_data(tokens=mine, personal=True, **kwargs)

    @method_decorator(sensitive_variables())  # the new token, in clear
    def form_valid(self, form):
        try:
            token, plaintext = services.personal_token_create(access=self.access, org=self.org, **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        return self.render_to_response(
            self.get_context_data(form=ApiTokenForm(), new_token=token, new_token_plaintext=plaintext)
        )


class PersonalTokenRevokeView(OrgMixin, View):
    def post(self, request, org_slug, pk):
        mine = api_token_list(access=self.access, org_id=self.org.pk).filter(acts_for=request.user)
        token = get_object_or_404(mine, pk=pk)
        services.api_token_revoke(access=self.access, token=token)
        messages.success(request, f"Token {token.name} revoked.")
        return redirect("my-tokens", org_slug=self.org.slug)


class AuditLogView(OrgMixin, TemplateView):
    template_name = "orgs/audit.html"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        events = AuditEvent.objects.visible_to(self.access).in_org(self.org.pk).select_related("actor")
        action = self.request.GET.get("action", "").strip()
        if action:
            events = events.filter(action__startswith=action)
        page = Paginator(events, self.paginate_by).get_page(self.request.GET.get("page"))
        return super().get_context_data(page=page, action=action, **kwargs)
