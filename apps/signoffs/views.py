"""Sign-off pages: a gate holder records a verdict, a follow-up is closed, admins set the policy.
Each returns to the project's readiness page, where the gates are shown."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import TemplateView

from apps.core.errors import ApplicationError
from apps.orgs.mixins import ActionView, OrgMixin
from apps.projects.views import ProjectActionView
from apps.signoffs import services as signoffs
from apps.signoffs.selectors import follow_up_list


class SignoffDecideView(ProjectActionView):
    def act(self):
        post = self.request.POST
        conditions = [line for line in post.get("conditions", "").splitlines() if line.strip()]
        decision = signoffs.signoff_decide(
            access=self.access,
            project=self.get_project(),
            function=post.get("function", ""),
            verdict=post.get("verdict", ""),
            reason=post.get("reason", ""),
            conditions=conditions,
        )
        return f"{decision.function}: {decision.get_verdict_display().lower()} recorded."


class FollowUpDoneView(ActionView):
    def get_follow_up(self):
        return get_object_or_404(follow_up_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def act(self):
        follow_up = signoffs.follow_up_close(
            access=self.access, follow_up=self.get_follow_up(), note=self.request.POST.get("note", "")
        )
        return f"Follow-up “{follow_up.text}” done."

    def back_url(self):
        return reverse("project-readiness", args=[self.org.slug, self.get_follow_up().project.slug])


class SignoffPolicyView(OrgMixin, TemplateView):
    """Everyone may read the policy; owners and admins change it."""

    template_name = "signoffs/signoff_policy.html"

    def get_context_data(self, **kwargs):
        policy = signoffs.policy_for(self.org)
        kwargs.setdefault("gates_json", json.dumps(policy.gates))
        return super().get_context_data(policy=policy, **kwargs)

    def post(self, request, *args, **kwargs):
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins can change the sign-off policy.")
        raw = request.POST.get("gates", "")
        try:
            try:
                gates = json.loads(raw)
            except json.JSONDecodeError:
                raise ApplicationError("The gates are not valid JSON.") from None
            signoffs.policy_update(
                access=self.access,
                org=self.org,
                gates=gates,
                allow_owner_approval=bool(request.POST.get("allow_owner_approval")),
                allow_multiple_gates=bool(request.POST.get("allow_multiple_gates")),
            )
        except ApplicationError as exc:
            messages.error(request, exc.message + " " + "; ".join(map(str, exc.detail.values())))
            return self.render_to_response(self.get_context_data(gates_json=raw), status=400)
        messages.success(request, "Sign-off policy saved.")
        return redirect("signoff-policy", org_slug=self.org.slug)
