import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST
from django.views.generic import FormView, TemplateView

from apps.core.errors import ApplicationError
from apps.integrations import services
from apps.integrations.forms import ConnectorForm
from apps.integrations.models import Connector, DeliveryStatus, Event
from apps.integrations.selectors import connector_list, delivery_list
from apps.orgs.mixins import ActionView, OrgMixin, form_error_from
from apps.projects.selectors import project_list


class ConnectorFormMixin(OrgMixin):
    """Reading is for every member; saving a connector is for owners and admins."""

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "projects": project_list(access=self.access, org_id=self.org.pk)}

    def post(self, request, *args, **kwargs):
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins manage connectors.")
        return super().post(request, *args, **kwargs)


@method_decorator(sensitive_post_parameters("secret"), name="dispatch")
class ConnectorListView(ConnectorFormMixin, FormView):
    """Everyone in the org sees the connectors; owners and admins add them."""

    template_name = "integrations/connectors.html"
    form_class = ConnectorForm

    def get_context_data(self, **kwargs):
        connectors = list(connector_list(access=self.access, org_id=self.org.pk))
        names = dict(Event.choices)  # the events as people read them, not their keys
        for c in connectors:
            c.event_labels = [names.get(e, e) for e in c.events]
        return super().get_context_data(connectors=connectors, **kwargs)

    @method_decorator(sensitive_variables())
    def form_valid(self, form):
        try:
            connector, shown = services.connector_create(access=self.access, organization=self.org, **form.cleaned_data)
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        # The secrets are shown in this response only (never put in a message cookie or the session):
        # the signing secret when one was generated, and the inbound secret the other side signs with.
        fresh = self.form_class(projects=project_list(access=self.access, org_id=self.org.pk))
        stored = Connector.objects.get(pk=connector.pk).inbound_secret  # as saved: encrypted, revealed here
        inbound = stored.reveal() if stored else ""
        inbound_url = services.absolute(reverse("inbound", args=[connector.inbound_id]))
        return self.render_to_response(
            self.get_context_data(
                form=fresh,
                new_connector=connector,
                new_secret=shown,
                new_inbound_secret=inbound,
                new_inbound_url=inbound_url,
            )
        )


class ConnectorMixin(OrgMixin):
    def get_connector(self):
        return get_object_or_404(connector_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


@method_decorator(sensitive_post_parameters("secret"), name="dispatch")
class ConnectorDetailView(ConnectorMixin, ConnectorFormMixin, FormView):
    """The connector, its settings (admins) and its deliveries, filterable by status and event."""

    template_name = "integrations/connector_detail.html"
    form_class = ConnectorForm

    def get_initial(self):
        c = self.get_connector()
        return {
            "name": c.name,
            "kind": c.kind,
            "url": c.url,
            "config": c.config,
            "project": c.project_id,
            "events": c.events,
            "active": c.active,
        }

    def get_context_data(self, **kwargs):
        connector = self.get_connector()
        deliveries = delivery_list(access=self.access, org_id=self.org.pk, connector_id=connector.pk)
        status, event = self.request.GET.get("status", ""), self.request.GET.get("event", "")
        if status:
            deliveries = deliveries.filter(status=status)
        if event:
            deliveries = deliveries.filter(event=event)
        page = Paginator(deliveries, 25).get_page(self.request.GET.get("page"))
        tickets = connector.tickets.select_related("project")[:50]
        kwargs.setdefault("inbound_url", services.absolute(reverse("inbound", args=[connector.inbound_id])))
        kwargs.setdefault("inbound_events", connector.inbound_events.all()[:20])
        return super().get_context_data(
            connector=connector,
            page=page,
            deliveries=page.object_list,
            tickets=tickets,
            statuses=DeliveryStatus.choices,
            events=Event.choices,
            status=status,
            event=event,
            **kwargs,
        )

    @method_decorator(sensitive_variables())
    def form_valid(self, form):
        try:
            _, shown = services.connector_update(
                access=self.access, connector=self.get_connector(), **form.cleaned_data
            )
        except ApplicationError as exc:
            form_error_from(form, exc)
            return self.form_invalid(form)
        if shown:  # the URL moved to another origin: the new signing secret, shown in this response only
            form = self.form_class(
                projects=project_list(access=self.access, org_id=self.org.pk), initial=self.get_initial()
            )
            return self.render_to_response(self.get_context_data(form=form, new_signing_secret=shown))
        messages.success(self.request, "Connector saved.")
        return redirect("connector-detail", org_slug=self.org.slug, pk=self.kwargs["pk"])


class ConnectorTestView(ConnectorMixin, ActionView):
    def act(self):
        delivery = services.send_test(access=self.access, connector=self.get_connector())
        if delivery.status == DeliveryStatus.SUCCEEDED:
            return f"Test delivered: HTTP {delivery.response_code}."
        raise ApplicationError(
            f"Test not delivered: {delivery.error or f'HTTP {delivery.response_code}'} "
            f"({delivery.get_status_display().lower()})."
        )

    def back_url(self):
        return reverse("connector-detail", args=[self.org.slug, self.get_connector().pk])


class ConnectorDeleteView(ConnectorMixin, ActionView):
    def act(self):
        connector = self.get_connector()
        services.connector_delete(access=self.access, connector=connector)
        self.deleted = True
        return f"Connector {connector.name} deleted."

    def back_url(self):
        if getattr(self, "deleted", False):
            return reverse("connectors", args=[self.org.slug])
        return reverse("connector-detail", args=[self.org.slug, self.get_connector().pk])


class DeliveryMixin(OrgMixin):
    def get_delivery(self):
        return get_object_or_404(delivery_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


class DeliveryDetailView(DeliveryMixin, TemplateView):
    template_name = "integrations/delivery_detail.html"

    def get_context_data(self, **kwargs):
        delivery = self.get_delivery()
        return super().get_context_data(
            delivery=delivery, payload=json.dumps(delivery.payload, indent=2), history=delivery.history.all(), **kwargs
        )


class DeliveryRedeliverView(DeliveryMixin, ActionView):
    def act(self):
        services.redeliver(access=self.access, delivery=self.get_delivery())
        return "Queued for redelivery."

    def back_url(self):
        return reverse("delivery-detail", args=[self.org.slug, self.get_delivery().pk])


@csrf_exempt
@require_POST
def inbound(request, inbound_id: str):
    """Callbacks from Jira, GitHub or any system speaking Standard Webhooks. No session, no token:
    the signature over the raw body is the credential. Every outcome is recorded; never a 500
    for what the caller sent."""
    connector = Connector.objects.filter(inbound_id=inbound_id, active=True).select_related("organization").first()
    if connector is None:
        return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "detail": {}}}, status=404)
    status, body = services.inbound_receive(connector, request.headers, request.body)
    return JsonResponse(body, status=status)


class InboundSecretRotateView(ConnectorDetailView):
    """A new inbound secret, shown once on the page this renders (not in a message cookie)."""

    http_method_names = ["post"]

    @method_decorator(sensitive_variables())
    def post(self, request, *args, **kwargs):
        if not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins manage connectors.")
        secret = services.inbound_secret_rotate(access=self.access, connector=self.get_connector())
        form = self.form_class(
            projects=project_list(access=self.access, org_id=self.org.pk), initial=self.get_initial()
        )
        return self.render_to_response(self.get_context_data(form=form, new_inbound_secret=secret))
