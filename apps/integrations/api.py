from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.drf import StrictFieldsMixin
from apps.integrations import services
from apps.integrations.models import Connector, Delivery, DeliveryAttempt
from apps.integrations.selectors import connector_list, delivery_list, findings_with_tickets
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin
from apps.orgs.selectors import organization_list
from apps.projects.api import project_in_scope
from apps.projects.selectors import project_list


class ConnectorSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Connector.objects.none())
    project = serializers.PrimaryKeyRelatedField(queryset=Connector.objects.none(), required=False, allow_null=True)
    events = serializers.ListField(child=serializers.ChoiceField(choices=services.SUBSCRIBABLE))
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Webhooks: the whsec_… signing secret (generated when omitted). "
        "Stored encrypted, never returned. A url on another origin (scheme, host, "
        "port) drops the stored one unless a new one is given: a webhook gets a "
        "new one (signing_secret in the answer), other kinds need their token "
        "again.",
    )
    has_secret = serializers.SerializerMethodField()
    inbound_url = serializers.SerializerMethodField(help_text="Where Jira / GitHub / other systems call back.")

    class Meta:
        model = Connector
        fields = [
            "id",
            "organization",
            "project",
            "name",
            "kind",
            "url",
            "config",
            "events",
            "active",
            "secret",
            "has_secret",
            "inbound_url",
            "created_at",
            "updated_at",
        ]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            access = request_access(request)
            fields["organization"].queryset = organization_list(access=access)
            fields["project"].queryset = project_list(access=access)
        if self.instance is not None:
            fields["organization"].read_only = True
        return fields

    def get_has_secret(self, obj) -> bool:
        return bool(obj.secret)

    def get_inbound_url(self, obj) -> str:
        from django.urls import reverse

        return services.absolute(reverse("inbound", args=[obj.inbound_id]))


@method_decorator(sensitive_post_parameters("secret"), name="dispatch")
class ConnectorViewSet(IdempotentCreateMixin, viewsets.ModelViewSet):
    """Where findings go: signed webhooks (Standard Webhooks) per organization or project. Owners and
    admins manage them; the signing secret is returned once, in the create response."""

    serializer_class = ConnectorSerializer
    filterset_fields = ["kind", "active", "project"]

    def get_queryset(self):
        return connector_list(access=request_access(self.request))

    @method_decorator(sensitive_variables())
    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        if getattr(self, "_shown_secret", None):
            response.data["signing_secret"] = self._shown_secret
        if response.status_code == 201 and "id" in response.data:  # shown once; a replay does not repeat it
            connector = Connector.objects.get(pk=response.data["id"])
            if connector.inbound_secret and not response.headers.get("Idempotent-Replayed"):
                response.data["inbound_secret"] = connector.inbound_secret.reveal()
        return response

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        organization = data.pop("organization")
        serializer.instance, self._shown_secret = services.connector_create(
            access=request_access(self.request), organization=organization, **data
        )

    def perform_update(self, serializer):
        serializer.instance, self._shown_secret = services.connector_update(
            access=request_access(self.request), connector=serializer.instance, **serializer.validated_data
        )

    @method_decorator(sensitive_variables())
    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        if getattr(self, "_shown_secret", None):  # the URL moved to another origin: a new secret, shown once
            response.data["signing_secret"] = self._shown_secret
        return response

    def perform_destroy(self, instance):
        services.connector_delete(access=request_access(self.request), connector=instance)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a `test` delivery now and return what the receiver answered."""
        delivery = services.send_test(access=request_access(request), connector=self.get_object())
        return Response(DeliverySerializer(delivery).data)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["round", "number", "sent_at", "response_code", "error", "response_excerpt"]


class DeliverySerializer(serializers.ModelSerializer):
    connector_name = serializers.CharField(source="connector.name", read_only=True)
    history = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "connector",
            "connector_name",
            "project",
            "event",
            "event_id",
            "finding_key",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "response_code",
            "response_excerpt",
            "error",
            "delivered_at",
            "created_at",
            "redeliveries",
            "history",
        ]


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every outbound call: status, attempts, response code and a capped excerpt, next retry."""

    serializer_class = DeliverySerializer
    filterset_fields = ["connector", "status", "event", "project"]

    def get_queryset(self):
        return delivery_list(access=request_access(self.request))

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = services.redeliver(access=request_access(request), delivery=self.get_object())
        return Response(DeliverySerializer(delivery).data)


class ProjectFindingsView(APIView):
    """Open findings (failing or pending items, unsigned gates, missed SLOs), each with the key
    its ticket is filed under and the tickets that track it."""

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, description="Only findings of this kind.")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pk: int):
        project = project_in_scope(request, pk)
        rows = findings_with_tickets(
            project, access=request_access(request), base_url=request.build_absolute_uri("/").rstrip("/")
        )
        kind = request.query_params.get("kind")
        if kind:
            rows = [r for r in rows if r["kind"] == kind]
        return Response({"project": project.pk, "count": len(rows), "results": rows})
