from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.generic import FormView, TemplateView

from apps.core.errors import ApplicationError
from apps.costs import services
from apps.costs.charts import options_chart
from apps.costs.forms import PriceForm, TrafficForm
from apps.costs.models import Price, TrafficProfile
from apps.costs.pricing import price_age_days
from apps.orgs.mixins import OrgMixin, form_error_from
from apps.projects.views import ProjectMixin
from apps.reports.evaluation import cost_for, latest_runs


class ProjectCostView(ProjectMixin, FormView):
    """The expected traffic (writers edit it) and what serving it costs each way."""

    template_name = "costs/project_cost.html"
    form_class = TrafficForm

    def get_form_kwargs(self):
        profile = TrafficProfile.objects.filter(project=self.get_project()).first()
        return {**super().get_form_kwargs(), "instance": profile}

    def get_context_data(self, **kwargs):
        project = self.get_project()
        cost = cost_for(project, latest_runs(project))
        figure = options_chart(cost) if cost else None
        return super().get_context_data(project=project, cost=cost, figures={"options": figure} if figure else {},
                                        **kwargs)  # fmt: skip

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
        services.ensure_catalog(self.org)
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
        fields = {name: form.cleaned_data[name] for name in services.PRICE_FIELDS}
        try:
            services.price_update(access=self.access, price=self.get_price(), **fields)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Price saved.")
        return redirect("prices", org_slug=self.org.slug)
