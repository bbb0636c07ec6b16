"""Pages for invitations: the invitee's list (accept / decline) and an admin's revoke."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView, View

from apps.core.errors import ApplicationError
from apps.orgs import invitations
from apps.orgs.mixins import OrgMixin
from apps.orgs.models import Invitation


class InvitationListView(LoginRequiredMixin, TemplateView):
    """The invitations addressed to the logged-in user's username."""

    template_name = "orgs/invitations.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(invitations=invitations.invitations_for(self.request.user), **kwargs)


class InvitationAnswerView(LoginRequiredMixin, View):
    def post(self, request, pk: int, answer: str):
        if answer not in ("accept", "decline"):
            raise Http404
        try:
            if answer == "accept":
                membership = invitations.invitation_accept(user=request.user, invitation_id=pk)
            else:
                invitations.invitation_decline(user=request.user, invitation_id=pk)
        except ApplicationError as exc:
            if exc.status == 404:
                raise Http404 from None
            messages.error(request, exc.message)
            return redirect("invitations")
        if answer == "decline":
            messages.success(request, "Invitation declined.")
            return redirect("invitations")
        messages.success(request, f"You joined {membership.organization.name} as {membership.get_role_display()}.")
        return redirect("dashboard", org_slug=membership.organization.slug)


class InvitationRevokeView(OrgMixin, View):
    write_required = True

    def post(self, request, org_slug, pk):
        invitation = get_object_or_404(Invitation.objects.in_org(self.org.pk), pk=pk)  # outsiders: 404
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins can withdraw invitations.")
        try:
            invitations.invitation_revoke(access=self.access, invitation=invitation)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Invitation of {invitation.username} withdrawn.")
        return redirect("members", org_slug=self.org.slug)
