from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import TemplateView

from apps.checklists import services as checklists
from apps.checklists.models import Checklist
from apps.checklists.selectors import template_list
from apps.checklists.services import member_functions
from apps.core.errors import ApplicationError
from apps.core.panels import panels, project_readiness
from apps.costs.services import cost_for
from apps.orgs.mixins import OrgMixin
from apps.orgs.models import Function
from apps.probes.selectors import latest_runs
from apps.projects.selectors import project_list
from apps.projects.views import ProjectActionView, ProjectMixin
from apps.reports import services
from apps.reports.charts import decision_trend
from apps.reports.refresh import refresh_pending
from apps.reports.selectors import decided_before_today, project_status, recent_outcomes, report_list
from apps.signoffs import services as signoffs
from apps.signoffs.models import Verdict
from apps.signoffs.selectors import follow_up_list


class DashboardView(OrgMixin, TemplateView):
    """The organization's projects with their decisions and the trend of their last reports."""

    template_name = "projects/dashboard.html"

    def get_context_data(self, **kwargs):
        projects = list(project_list(access=self.access, org_id=self.org.pk).select_related("status"))
        trends = recent_outcomes(access=self.access, org_id=self.org.pk)
        for project in projects:
            project.trend = trends.get(project.pk, [])
        return super().get_context_data(projects=projects, **kwargs)


class ReadinessView(ProjectMixin, TemplateView):
    """The project's decision at a glance, what to do about it, and the way to sign."""

    template_name = "reports/readiness.html"

    def get_context_data(self, **kwargs):
        project = self.get_project()
        status = project_status(project)  # a read: the decision as last evaluated, with its age on the page
        # A change's re-evaluation is queued (seconds), or the decision is of an earlier day (beat's
        # midnight run, minutes): the page says so and reloads itself.
        pending = refresh_pending(project.pk)
        refreshing = pending or decided_before_today(status)
        reload_s = 3 if pending else 30
        on_project = list(Checklist.objects.filter(project=project).select_related("template"))
        keys = {c.template_key for c in on_project}
        latest = {}
        for t in template_list(access=self.access, org_id=self.org.pk).order_by("key", "-version"):
            latest.setdefault(t.key, t)
        scores = {c["category"]: c for c in (status.categories if status else [])}
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
        open_to = signoffs.verdicts_open_to(
            access=self.access, project=project, states=gates, policy=policy, functions=functions
        )
        for g in gates:
            g.verdict_choices = open_to[g.function]
        follow_ups = list(
            follow_up_list(access=self.access, org_id=self.org.pk, project_id=project.pk)
            .filter(status="open")
            .select_related("decision")
        )
        user_id = getattr(self.access.user, "pk", None)
        for f in follow_ups:
            refusal = signoffs.follow_up_close_refusal(f, user_id=user_id, functions=functions)
            f.can_close = can_write and refusal is None
        return super().get_context_data(
            project=project,
            status=status,
            refreshing=refreshing,
            reload_s=reload_s,
            checklists=on_project,
            addable=[t for k, t in latest.items() if k not in keys],
            gates=gates,
            can_generate_report=can_write,
            follow_ups=follow_ups,
            can_write=can_write,
            reports=reports,
            figures={"trend": trend} if trend else {},
            verdicts=Verdict.choices,
            functions=Function.choices,
            cost=cost_for(project, latest_runs(project)),
            panels=panels(project_readiness, project=project, access=self.access),
        )


class ChecklistAddView(ProjectActionView):
    def act(self):
        template = template_list(access=self.access, org_id=self.org.pk).filter(pk=self.request.POST.get("template"))
        template = template.first()
        if template is None:
            raise ApplicationError("Choose a template.", detail={"template": ["Unknown template."]})
        checklists.checklist_add(access=self.access, project=self.get_project(), template=template)
        return f"Checklist {template} added."


class ReportCreateView(ProjectActionView):
    def act(self):
        report = services.report_create(access=self.access, project=self.get_project())
        self.created = report
        return f"Report #{report.number} generated: {report.outcome}."

    def back_url(self):
        report = getattr(self, "created", None)
        return reverse("report-detail", args=[self.org.slug, report.pk]) if report else super().back_url()


class ReportMixin(OrgMixin):
    def get_report(self):
        return get_object_or_404(report_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


class ReportDetailView(ReportMixin, TemplateView):
    """Rendered from the stored snapshot only: the report looks the same whatever changed since."""

    template_name = "reports/report_detail.html"

    def get_context_data(self, **kwargs):
        report = self.get_report()
        snap = report.snapshot
        return super().get_context_data(
            report=report, snap=snap, figures=snap.get("figures", {}), changes=snap.get("changes", {}), **kwargs
        )


class ReportJsonView(ReportMixin, TemplateView):
    def get(self, request, *args, **kwargs):
        report = self.get_report()
        body = {
            "id": report.pk,
            "number": report.number,
            "project": report.project_id,
            "organization": self.org.slug,
            "created_at": report.created_at.isoformat(),
            "created_by": report.created_label,
            "trigger": report.trigger,
            "outcome": report.outcome,
            "fingerprint": report.fingerprint,
            "snapshot": report.snapshot,
        }
        response = JsonResponse(body, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="report-{report.project.slug}-{report.number}.json"'
        return response
