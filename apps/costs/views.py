from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import FormView, TemplateView, View

from apps.core.errors import ApplicationError
from apps.costs import services, stored
from apps.costs.charts import hourly_requests, options_chart
from apps.costs.forms import PriceForm, ReplayForm, TenantsReplayForm, TrafficForm
from apps.costs.models import Price, TrafficProfile, UsageLog
from apps.costs.pricing import price_age_days
from apps.orgs.mixins import ActionView, OrgMixin, form_error_from
from apps.probes.selectors import latest_runs
from apps.projects.views import ProjectMixin


class ProjectCostView(ProjectMixin, FormView):
    """The expected traffic (writers edit it) and what serving it costs each way."""

    template_name = "costs/project_cost.html"
    form_class = TrafficForm

    def get_form_kwargs(self):
        profile = TrafficProfile.objects.filter(project=self.get_project()).first()
        return {**super().get_form_kwargs(), "instance": profile}

    def get_context_data(self, **kwargs):
        project = self.get_project()
        runs = latest_runs(project)
        cost = services.cost_for(project, runs)
        figure = options_chart(cost) if cost else None
        logs = UsageLog.objects.visible_to(self.access).filter(project=project)[:20]
        stored_logs = stored.listing(settings.READINESS_USAGE_LOG_IMPORT_DIR, self.org.slug)
        return super().get_context_data(
            project=project,
            cost=cost,
            tenant_costs=services.tenant_costs(project, runs),
            figures={"options": figure} if figure else {},
            usage_logs=logs,
            stored_logs=stored_logs,
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if not self.access.can_write(self.org.pk):
            raise PermissionDenied("Your role in this organization is read-only.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        fields = {name: form.cleaned_data[name] for name in services.TRAFFIC_FIELDS}
        try:
            services.traffic_save(access=self.access, project=self.get_project(), **fields)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Traffic saved; the projection and the go/no-go use it now.")
        return redirect("project-cost", org_slug=self.org.slug, slug=self.get_project().slug)


class PriceListView(OrgMixin, TemplateView):
    template_name = "costs/prices.html"

    def get_context_data(self, **kwargs):
        prices = list(Price.objects.visible_to(self.access).in_org(self.org.pk))
        today = timezone.localdate()
        for p in prices:
            p.age_days = price_age_days(p.as_of, today=today)
            p.stale = p.age_days > settings.READINESS_PRICE_MAX_AGE_DAYS
        return super().get_context_data(prices=prices, max_age=settings.READINESS_PRICE_MAX_AGE_DAYS, **kwargs)


class PriceEditView(OrgMixin, FormView):
    template_name = "costs/price_form.html"
    form_class = PriceForm
    write_required = True

    def get_price(self):
        return get_object_or_404(Price.objects.visible_to(self.access).in_org(self.org.pk), pk=self.kwargs["pk"])

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "instance": self.get_price()}

    def get_context_data(self, **kwargs):
        return super().get_context_data(price=self.get_price(), **kwargs)

    def form_valid(self, form):
        # The form holds only the fields of the price's kind; the others keep their stored values.
        fields = {name: form.cleaned_data[name] for name in services.PRICE_FIELDS if name in form.cleaned_data}
        try:
            services.price_update(access=self.access, price=self.get_price(), **fields)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Price saved.")
        return redirect("prices", org_slug=self.org.slug)


class UsageLogUploadView(ProjectMixin, ActionView):
    def act(self):
        upload = self.request.FILES.get("file")
        if upload is None:
            raise ApplicationError("Choose a file to upload.")
        log = services.usage_log_upload(access=self.access, project=self.get_project(), upload=upload)
        return f"{log.name} uploaded; a worker is analysing it."

    def back_url(self):
        return reverse("project-cost", args=[self.org.slug, self.get_project().slug]) + "#usage"


class UsageLogFromStoredView(ProjectMixin, ActionView):
    def act(self):
        log = services.usage_log_from_stored(
            access=self.access, project=self.get_project(), name=self.request.POST.get("stored_name", "")
        )
        return f"{log.stored_name} queued; a worker is analysing it where it is stored."

    def back_url(self):
        return reverse("project-cost", args=[self.org.slug, self.get_project().slug]) + "#usage"


class UsageLogMixin(OrgMixin):
    def get_log(self):
        logs = UsageLog.objects.visible_to(self.access).in_org(self.org.pk).select_related("project")
        return get_object_or_404(logs, pk=self.kwargs["pk"])


class UsageLogDetailView(UsageLogMixin, TemplateView):
    template_name = "costs/usage_log.html"

    def get_context_data(self, replay_form=None, tenants_form=None, **kwargs):
        log = self.get_log()
        hourly = hourly_requests(log.hourly_requests)
        figures = {"hourly": hourly} if hourly else {}
        hour = (log.analysis or {}).get("busiest_hour") or {}
        replay = (
            {
                "from": hour.get("from"),
                "requests": sum(hour.get("requests_per_minute") or []),
                "form": replay_form or ReplayForm(endpoints=log.project.endpoints.order_by("name")),
            }
            if hour
            else None
        )
        endpoints = log.project.endpoints.order_by("name")
        return super().get_context_data(
            log=log,
            a=log.analysis or {},
            figures=figures,
            replay=replay,
            tenants_form=tenants_form or TenantsReplayForm(endpoints=endpoints),
            **kwargs,
        )


class UsageLogTenantsPlanView(UsageLogMixin, View):
    """The log's noisy-neighbour plan as a JSON file, for `manage.py probe --tenants`."""

    def get(self, request, *args, **kwargs):
        log = self.get_log()
        try:
            plan = services.usage_log_tenants_plan(log)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(reverse("usage-log-detail", args=[self.org.slug, log.pk]) + "#tenants")
        response = JsonResponse(plan, json_dumps_params={"indent": 1})
        response["Content-Disposition"] = f'attachment; filename="tenants-log-{log.pk}.json"'
        return response


class UsageLogReplayView(UsageLogDetailView):
    """Create a probe plan replaying the log's busiest hour on a chosen endpoint, then open it. A
    refusal shows the log's page again with the form as it was sent and the error at its field."""

    write_required = True
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        log = self.get_log()
        form = ReplayForm(request.POST, endpoints=log.project.endpoints.order_by("name"))
        if form.is_valid():
            try:
                plan = services.usage_log_replay_plan(
                    access=self.access,
                    log=log,
                    endpoint=form.cleaned_data["endpoint"],
                    scale=form.cleaned_data["scale"],
                    seconds_per_minute=form.cleaned_data["seconds_per_minute"],
                )
            except ApplicationError as exc:
                form_error_from(form, exc)
            else:
                messages.success(
                    request,
                    f"Plan “{plan.name}” created: start it to test the endpoint against the log's busiest hour.",
                )
                return redirect(reverse("plan-detail", args=[self.org.slug, plan.pk]))
        return self.render_to_response(self.get_context_data(replay_form=form), status=400)


class UsageLogTenantsReplayView(UsageLogDetailView):
    """Create a noisy-neighbour probe plan from the log on a chosen endpoint, then open it; a refusal
    shows the log's page again with the form as sent and the error at its field."""

    write_required = True
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        log = self.get_log()
        form = TenantsReplayForm(request.POST, endpoints=log.project.endpoints.order_by("name"))
        if form.is_valid():
            try:
                plan = services.usage_log_tenants_plan_create(access=self.access, log=log, **form.cleaned_data)
            except ApplicationError as exc:
                form_error_from(form, exc)
            else:
                messages.success(
                    request,
                    f"Plan “{plan.name}” created: give each tenant its key (Edit) if your gateway tells them apart "
                    "by key, then start it.",
                )
                return redirect(reverse("plan-detail", args=[self.org.slug, plan.pk]))
        return self.render_to_response(self.get_context_data(tenants_form=form), status=400)


class UsageLogApplyView(UsageLogMixin, ActionView):
    def act(self):
        profile = services.usage_log_apply(access=self.access, log=self.get_log())
        return (
            f"Traffic profile set from the log: {profile.requests_per_day} requests/day, peak-to-average "
            f"{profile.peak_to_average}."
        )

    def back_url(self):
        return reverse("project-cost", args=[self.org.slug, self.get_log().project.slug])
