import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import TemplateView

from apps.checklists import services as checklists
from apps.checklists.models import Checklist
from apps.checklists.selectors import template_list
from apps.checklists.services import member_functions
from apps.core.errors import ApplicationError
from apps.integrations.models import TicketLink
from apps.orgs.mixins import ActionView, OrgMixin
from apps.orgs.models import Function
from apps.projects.views import ProjectMixin
from apps.reports import services
from apps.reports.charts import decision_trend
from apps.reports.evaluation import cost_for, latest_runs, refresh_project
from apps.reports.selectors import report_list
from apps.signoffs import services as signoffs
from apps.signoffs.models import Verdict
from apps.signoffs.selectors import follow_up_list


class ReadinessView(ProjectMixin, TemplateView):
    """The project's decision at a glance, what to do about it, and the way to sign."""

    template_name = "reports/readiness.html"

    def get_context_data(self, **kwargs):
        project = self.get_project()
        checklists.ensure_shipped_templates(self.org)
        # Expiry and probe age move with the clock alone: evaluate now so the page is never behind.
        refresh_project(project)
        project.status.refresh_from_db()
        on_project = list(Checklist.objects.filter(project=project).select_related("template"))
        keys = {c.template_key for c in on_project}
        latest = {}
        for t in template_list(access=self.access, org_id=self.org.pk).order_by("key", "-version"):
            latest.setdefault(t.key, t)
        scores = {c["category"]: c for c in project.status.categories}
        for c in on_project:
            c.score = scores.get(c.template.category, {})
            c.newer = latest.get(c.template_key) if latest[c.template_key].version > c.template.version else None
        reports = list(report_list(access=self.access, org_id=self.org.pk, project_id=project.pk)[:20])
        trend = decision_trend(list(reversed(reports)))
        # Each person sees only the forms they can submit: the services' own refusals decide.
        policy = signoffs.policy_for(self.org)
        gates = signoffs.gate_states(project, policy)
        can_write = self.access.can_write(self.org.pk)
        functions = member_functions(self.access, self.org.pk)
        open_to = signoffs.verdicts_open_to(access=self.access, project=project, states=gates, policy=policy,
                                            functions=functions)  # fmt: skip
        for g in gates:
            g.verdict_choices = open_to[g.function]
        follow_ups = list(follow_up_list(access=self.access, org_id=self.org.pk, project_id=project.pk)
                          .filter(status="open").select_related("decision"))  # fmt: skip
        user_id = getattr(self.access.user, "pk", None)
        for f in follow_ups:
            refusal = signoffs.follow_up_close_refusal(f, user_id=user_id, functions=functions)
            f.can_close = can_write and refusal is None
        return super().get_context_data(
            project=project, status=project.status, checklists=on_project,
            addable=[t for k, t in latest.items() if k not in keys], gates=gates, can_generate_report=can_write,
            follow_ups=follow_ups, can_write=can_write, reports=reports, figures={"trend": trend} if trend else {},
            verdicts=Verdict.choices, functions=Function.choices, cost=cost_for(project, latest_runs(project)),
            tickets=TicketLink.objects.visible_to(self.access).filter(project=project).select_related("connector"),
        )  # fmt: skip


class ProjectActionView(ProjectMixin, ActionView):
    def back_url(self):
        return reverse("project-readiness", args=[self.org.slug, self.get_project().slug])


class ChecklistAddView(ProjectActionView):
    def act(self):
        template = template_list(access=self.access, org_id=self.org.pk).filter(pk=self.request.POST.get("template"))
        template = template.first()
        if template is None:
            raise ApplicationError("Choose a template.", detail={"template": ["Unknown template."]})
        checklists.checklist_add(access=self.access, project=self.get_project(), template=template)
        return f"Checklist {template} added."


class SignoffDecideView(ProjectActionView):
    def act(self):
        post = self.request.POST
        conditions = [line for line in post.get("conditions", "").splitlines() if line.strip()]
        decision = signoffs.signoff_decide(
            access=self.access, project=self.get_project(), function=post.get("function", ""),
            verdict=post.get("verdict", ""), reason=post.get("reason", ""), conditions=conditions,
        )  # fmt: skip
        return f"{decision.function}: {decision.get_verdict_display().lower()} recorded."


class ReportCreateView(ProjectActionView):
    def act(self):
        report = services.report_create(access=self.access, project=self.get_project())
        self.created = report
        return f"Report #{report.number} generated: {report.outcome}."

    def back_url(self):
        report = getattr(self, "created", None)
        return reverse("report-detail", args=[self.org.slug, report.pk]) if report else super().back_url()


class FollowUpDoneView(ActionView):
    def get_follow_up(self):
        return get_object_or_404(follow_up_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def act(self):
        follow_up = signoffs.follow_up_close(access=self.access, follow_up=self.get_follow_up(),
                                             note=self.request.POST.get("note", ""))  # fmt: skip
        return f"Follow-up “{follow_up.text}” done."

    def back_url(self):
        return reverse("project-readiness", args=[self.org.slug, self.get_follow_up().project.slug])


class ReportMixin(OrgMixin):
    def get_report(self):
        return get_object_or_404(report_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


class ReportDetailView(ReportMixin, TemplateView):
    """Rendered from the stored snapshot only: the report looks the same whatever changed since."""

    template_name = "reports/report_detail.html"

    def get_context_data(self, **kwargs):
        report = self.get_report()
        snap = report.snapshot
        return super().get_context_data(report=report, snap=snap, figures=snap.get("figures", {}),
                                        changes=snap.get("changes", {}), **kwargs)  # fmt: skip


class ReportJsonView(ReportMixin, TemplateView):
    def get(self, request, *args, **kwargs):
        report = self.get_report()
        body = {"id": report.pk, "number": report.number, "project": report.project_id,
                "organization": self.org.slug, "created_at": report.created_at.isoformat(),
                "created_by": report.created_label, "trigger": report.trigger, "outcome": report.outcome,
                "fingerprint": report.fingerprint, "snapshot": report.snapshot}  # fmt: skip
        response = JsonResponse(body, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="report-{report.project.slug}-{report.number}.json"'
        return response


class SignoffPolicyView(OrgMixin, TemplateView):
    """Everyone may read the policy; owners and admins change it."""

    template_name = "reports/signoff_policy.html"

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
            signoffs.policy_update(access=self.access, org=self.org, gates=gates,
                                   allow_owner_approval=bool(request.POST.get("allow_owner_approval")),
                                   allow_multiple_gates=bool(request.POST.get("allow_multiple_gates")))  # fmt: skip
        except ApplicationError as exc:
            messages.error(request, exc.message + " " + "; ".join(map(str, exc.detail.values())))
            return self.render_to_response(self.get_context_data(gates_json=raw), status=400)
        messages.success(request, "Sign-off policy saved.")
        return redirect("signoff-policy", org_slug=self.org.slug)
