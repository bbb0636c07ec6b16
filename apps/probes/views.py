import json
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import FormView, TemplateView, View

from apps.core.errors import ApplicationError
from apps.orgs.mixins import OrgMixin, form_error_from
from apps.probes import charts, plan_charts, plans, services
from apps.probes.api import _csv_response
from apps.probes.engine import compat
from apps.probes.forms import LimitsForm, PlanForm
from apps.probes.models import ACTIVE_STATUSES, ProbeLimits
from apps.probes.retention import run_records_pruned
from apps.probes.selectors import (
    endpoints_with_last_success,
    plan_finished_runs,
    plan_list,
    plan_trends,
    plans_with_latest_run,
    run_comparison,
    run_list,
    run_records,
    run_with_shards,
)
from apps.probes.tenant_keys import stored_tenant_keys
from apps.projects.selectors import endpoint_list
from apps.projects.views import ProjectMixin


class ProjectDetailView(ProjectMixin, TemplateView):
    """A project's endpoints (each with its last successful probe) and its probe plans with their trends."""

    template_name = "projects/project_detail.html"

    def get_context_data(self, **kwargs):
        project = self.get_project()
        endpoints = endpoints_with_last_success(access=self.access, org_id=self.org.pk, project_id=project.pk)
        plans = list(plans_with_latest_run(access=self.access, org_id=self.org.pk, project_id=project.pk))
        figures = plan_trends(access=self.access, org_id=self.org.pk, plans=plans)
        return super().get_context_data(project=project, endpoints=endpoints, plans=plans, figures=figures, **kwargs)


class PlanMixin(OrgMixin):
    def get_plan(self):
        if not hasattr(self, "_plan"):
            self._plan = get_object_or_404(plan_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])
        return self._plan


class RunMixin(OrgMixin):
    def get_run(self):
        if not hasattr(self, "_run"):
            qs = run_with_shards(run_list(access=self.access, org_id=self.org.pk))
            self._run = get_object_or_404(qs, pk=self.kwargs["pk"])
        return self._run


class PlanFormMixin:
    template_name = "probes/plan_form.html"
    form_class = PlanForm
    write_required = True

    def form_invalid(self, form):
        form.forget_keys()
        return super().form_invalid(form)


class PlanCreateView(PlanFormMixin, OrgMixin, FormView):
    def get_endpoint(self):
        return get_object_or_404(endpoint_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["endpoint_pk"])

    def get_initial(self):
        endpoint = self.get_endpoint()
        return {**super().get_initial(), "name": "baseline", "metrics_url": endpoint.metrics_url}

    def get_context_data(self, **kwargs):
        return super().get_context_data(endpoint=self.get_endpoint(), **kwargs)

    def form_valid(self, form):
        try:
            plan = services.probe_plan_create(access=self.access, endpoint=self.get_endpoint(), **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Plan {plan.name} created.")
        return redirect("plan-detail", org_slug=self.org.slug, pk=plan.pk)


class PlanEditView(PlanFormMixin, PlanMixin, FormView):
    def get_initial(self):
        return PlanForm.initial_from(self.get_plan())

    def get_context_data(self, **kwargs):
        plan = self.get_plan()
        return super().get_context_data(plan=plan, endpoint=plan.endpoint, **kwargs)

    def form_valid(self, form):
        try:
            plan = services.probe_plan_update(access=self.access, plan=self.get_plan(), **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Plan saved.")
        return redirect("plan-detail", org_slug=self.org.slug, pk=plan.pk)


class PlanDetailView(PlanMixin, TemplateView):
    template_name = "probes/plan_detail.html"
    # A replay plan holds a stage per minute of its log: past this many, the table starts folded.
    STAGES_OPEN_UP_TO = 8

    def get_context_data(self, **kwargs):
        plan = self.get_plan()
        runs = list(run_list(access=self.access, org_id=self.org.pk, plan_id=plan.pk).defer("timeline", "config")[:50])
        trend = charts.trend(list(reversed(runs[:20])))
        try:
            load = plans.offered_load(plan.profile)
        except ApplicationError:  # a plan stored before a rule tightened: its JSON is still shown
            load = None
        finished = [r for r in runs if not r.is_active]
        return super().get_context_data(
            plan=plan,
            runs=runs,
            figures={"trend": trend} if trend else {},
            profile_json=json.dumps(plan.profile, indent=1),
            load=load,
            load_figures={"offered-load": plan_charts.offered_load_figure(load)} if load else {},
            stages_open=load is not None and len(load["segments"]) <= self.STAGES_OPEN_UP_TO,
            can_compare=len(finished) >= 2,
            tenants=plans.tenant_spec(plan.profile),
            tenant_keys_set=sorted(stored_tenant_keys(plan)),
            **kwargs,
        )


class PlanCompareView(PlanMixin, View):
    """The run picker's target: ?a=<run>&b=<run> (both of this plan) opens their comparison; without
    them, the newest finished run against the one before."""

    def get(self, request, org_slug, pk):
        plan = self.get_plan()
        wanted = [request.GET.get("a"), request.GET.get("b")]
        if any(wanted):
            # ASCII digits, at most 18 of them: int() refuses "²" (a digit to isdigit) and 5000-digit strings.
            if not all(v and v.isascii() and v.isdigit() and len(v) <= 18 for v in wanted):
                raise Http404("Pick two runs of this plan.")
            finished = run_list(access=self.access, org_id=self.org.pk, plan_id=plan.pk).exclude(
                status__in=ACTIVE_STATUSES
            )
            a, b = (get_object_or_404(finished.select_related(None).only("pk"), pk=int(v)) for v in wanted)
        else:
            newest = list(plan_finished_runs(access=self.access, org_id=self.org.pk, plan_id=plan.pk)[:2])
            if len(newest) < 2:
                raise Http404("This plan has fewer than two finished runs.")
            b, a = newest
        return redirect("run-compare", org_slug=self.org.slug, pk=b.pk, other=a.pk)


class PlanStartView(PlanMixin, View):
    write_required = True

    def post(self, request, org_slug, pk):
        try:
            run = services.probe_run_start(access=self.access, plan=self.get_plan())
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("plan-detail", org_slug=self.org.slug, pk=pk)
        return redirect("run-detail", org_slug=self.org.slug, pk=run.pk)


class PlanDeleteView(PlanMixin, View):
    write_required = True

    def post(self, request, org_slug, pk):
        plan = self.get_plan()
        project_slug = plan.endpoint.project.slug
        try:
            services.probe_plan_delete(access=self.access, plan=plan)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("plan-detail", org_slug=self.org.slug, pk=pk)
        messages.success(request, f"Plan {plan.name} deleted.")
        return redirect("project-detail", org_slug=self.org.slug, slug=project_slug)


class RunDetailView(RunMixin, TemplateView):
    template_name = "probes/run_detail.html"

    def get_context_data(self, **kwargs):
        run = self.get_run()
        previous = (
            run_list(access=self.access, org_id=self.org.pk, plan_id=run.plan_id)
            .succeeded()
            .filter(created_at__lt=run.created_at)
            .select_related(None)
            .only("pk")
            .first()
        )
        return super().get_context_data(
            run=run,
            progress=run.progress(),
            figures=charts.run_figures(run),
            previous=previous,
            records_pruned=run_records_pruned(run),
            **kwargs,
        )


class RunProgressView(RunMixin, View):
    """Polled by the run page every 2 s while the run is active."""

    def get(self, request, org_slug, pk):
        return JsonResponse(self.get_run().progress())


class RunCancelView(RunMixin, View):
    write_required = True

    def post(self, request, org_slug, pk):
        try:
            services.probe_run_cancel(access=self.access, run=self.get_run())
            messages.success(request, "Cancelling: shards stop within a few seconds and keep what they measured.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("run-detail", org_slug=self.org.slug, pk=pk)


class RunSummaryDownloadView(RunMixin, View):
    def get(self, request, org_slug, pk):
        run = self.get_run()
        body = {
            "run": run.pk,
            "plan": run.plan.name,
            "status": run.status,
            "config": run.config,
            "summary": run.summary,
            "server_metrics": run.server_metrics,
        }
        response = HttpResponse(json.dumps(body, indent=1), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-summary.json"'
        return response


PRUNED_CSV = (
    "The per-request records of run #{run} were pruned (READINESS_RETAIN_PROBE_RECORDS_DAYS after it finished): "
    "there is no requests CSV any more. Its summary (Summary JSON), charts and comparisons are kept.\n"
)


class RunCsvDownloadView(RunMixin, View):
    def get(self, request, org_slug, pk):
        run = self.get_run()
        if run_records_pruned(run):  # an empty CSV would read as a run that sent nothing
            return HttpResponse(PRUNED_CSV.format(run=run.pk), status=410, content_type="text/plain; charset=utf-8")
        return _csv_response(run_records(run), f"run-{run.pk}-requests.csv")


class RunCompareView(RunMixin, TemplateView):
    template_name = "probes/run_compare.html"

    def get_context_data(self, **kwargs):
        run = self.get_run()
        other = get_object_or_404(
            run_list(access=self.access, org_id=self.org.pk, plan_id=run.plan_id), pk=self.kwargs["other"]
        )
        choices = plan_finished_runs(access=self.access, org_id=self.org.pk, plan_id=run.plan_id)
        return super().get_context_data(
            a=other,
            b=run,
            rows=run_comparison(other, run),
            threshold_pct=run.plan.regression_threshold_pct,
            choices=choices,
            **kwargs,
        )


class LimitsView(OrgMixin, FormView):
    template_name = "probes/limits.html"
    form_class = LimitsForm

    def get_initial(self):
        override = ProbeLimits.objects.in_org(self.org.pk).first()
        return {f: getattr(override, f) for f in services.LIMIT_FIELDS} if override else {}

    def get_context_data(self, **kwargs):
        return super().get_context_data(effective=services.probe_limits(self.org.pk), **kwargs)

    def post(self, request, *args, **kwargs):
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins can change probe limits.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            services.probe_limits_update(access=self.access, org=self.org, **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Probe limits saved.")
        return redirect("probe-limits", org_slug=self.org.slug)


class EndpointCompatibilityView(OrgMixin, TemplateView):
    """The endpoint's last compatibility check; writers run a new one with POST."""

    template_name = "probes/endpoint_compatibility.html"

    def get_endpoint(self):
        return get_object_or_404(endpoint_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        endpoint = self.get_endpoint()
        report = endpoint.compatibility
        checked_at = datetime.fromisoformat(report["checked_at"]) if report and report.get("checked_at") else None
        return super().get_context_data(
            endpoint=endpoint,
            report=report,
            checked_at=checked_at,
            rows=compat.rows(report) if report else [],
            **kwargs,
        )

    def post(self, request, org_slug, pk):
        endpoint = self.get_endpoint()  # an outsider gets 404 before a viewer gets 403
        if not self.access.can_write(self.org.pk):
            raise PermissionDenied
        try:
            report = services.endpoint_compatibility_check(access=self.access, endpoint=endpoint)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            if report["streaming"]:
                messages.success(request, f"{endpoint.name}: checked; probes send what this server accepts.")
            else:
                messages.error(request, f"{endpoint.name}: streaming does not work; see the table.")
        return redirect("endpoint-compatibility", org_slug=self.org.slug, pk=endpoint.pk)
