from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, View

from apps.core.errors import ApplicationError
from apps.orgs.mixins import ActionView, OrgMixin, form_error_from
from apps.projects import services
from apps.projects.forms import EndpointForm, ProjectForm
from apps.projects.selectors import endpoint_list, project_list


class ProjectMixin(OrgMixin):
    def get_project(self):
        if not hasattr(self, "_project"):
            self._project = get_object_or_404(
                project_list(access=self.access, org_id=self.org.pk), slug=self.kwargs["slug"]
            )
        return self._project


class ProjectActionView(ProjectMixin, ActionView):
    """A POST on a project whose result is read on its readiness page (checklists, gates, reports)."""

    def back_url(self):
        return reverse("project-readiness", args=[self.org.slug, self.get_project().slug])


def _form_data(form) -> dict:
    return dict(form.cleaned_data)


class ProjectCreateView(OrgMixin, FormView):
    template_name = "projects/project_form.html"
    form_class = ProjectForm
    write_required = True

    def form_valid(self, form):
        try:
            project = services.project_create(access=self.access, organization=self.org, **_form_data(form))
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Project {project.name} created.")
        return redirect("project-detail", org_slug=self.org.slug, slug=project.slug)


class ProjectEditView(ProjectMixin, FormView):
    template_name = "projects/project_form.html"
    form_class = ProjectForm
    write_required = True

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "instance": self.get_project()}

    def get_context_data(self, **kwargs):
        return super().get_context_data(project=self.get_project(), **kwargs)

    def form_valid(self, form):
        try:
            project = services.project_update(access=self.access, project=self.get_project(), **_form_data(form))
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Project saved.")
        return redirect("project-detail", org_slug=self.org.slug, slug=project.slug)


class ProjectDeleteView(ProjectMixin, View):
    write_required = True

    def post(self, request, org_slug, slug):
        project = self.get_project()
        services.project_delete(access=self.access, project=project)
        messages.success(request, f"Project {project.name} deleted.")
        return redirect("dashboard", org_slug=self.org.slug)


@method_decorator(sensitive_post_parameters("api_key"), name="dispatch")
class EndpointCreateView(ProjectMixin, FormView):
    template_name = "projects/endpoint_form.html"
    form_class = EndpointForm
    write_required = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(project=self.get_project(), **kwargs)

    def form_valid(self, form):
        project = self.get_project()
        try:
            services.endpoint_create(access=self.access, project=project, **_form_data(form))
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Endpoint added.")
        return redirect("project-detail", org_slug=self.org.slug, slug=project.slug)


class EndpointMixin(OrgMixin):
    def get_endpoint(self):
        if not hasattr(self, "_endpoint"):
            self._endpoint = get_object_or_404(
                endpoint_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"]
            )
        return self._endpoint


@method_decorator(sensitive_post_parameters("api_key"), name="dispatch")
class EndpointEditView(EndpointMixin, FormView):
    template_name = "projects/endpoint_form.html"
    form_class = EndpointForm
    write_required = True

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "instance": self.get_endpoint()}

    def get_context_data(self, **kwargs):
        endpoint = self.get_endpoint()
        return super().get_context_data(endpoint=endpoint, project=endpoint.project, **kwargs)

    def form_valid(self, form):
        endpoint = self.get_endpoint()
        try:
            services.endpoint_update(access=self.access, endpoint=endpoint, **_form_data(form))
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Endpoint saved.")
        if endpoint.api_key_dropped:
            messages.warning(self.request, services.KEY_DROPPED_NOTICE)
        return redirect("project-detail", org_slug=self.org.slug, slug=endpoint.project.slug)


class EndpointTestView(EndpointMixin, View):
    write_required = True

    def post(self, request, org_slug, pk):
        endpoint = self.get_endpoint()
        result = services.endpoint_test_connection(access=self.access, endpoint=endpoint)
        if result["ok"]:
            messages.success(request, f"{endpoint.name}: {result['message']} ({result['elapsed_ms']} ms)")
        else:
            messages.error(request, f"{endpoint.name}: {result['message']}")
        return redirect("project-detail", org_slug=self.org.slug, slug=endpoint.project.slug)


class EndpointDeleteView(EndpointMixin, View):
    write_required = True

    def post(self, request, org_slug, pk):
        endpoint = self.get_endpoint()
        services.endpoint_delete(access=self.access, endpoint=endpoint)
        messages.success(request, f"Endpoint {endpoint.name} deleted.")
        return redirect("project-detail", org_slug=self.org.slug, slug=endpoint.project.slug)
