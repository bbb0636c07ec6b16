import django_filters
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.drf import FilterSet, IdFilter, StrictFieldsMixin
from apps.net.netguard import OutboundRefused, parse_http_url
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin
from apps.orgs.selectors import organization_list
from apps.projects import services
from apps.projects.models import Endpoint, Project
from apps.projects.selectors import endpoint_list, project_list


def _http_url(value: str) -> str:
    try:
        parse_http_url(value)
    except OutboundRefused as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value.strip()


class ProjectSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.none(),  # replaced per request in get_fields
        required=False,
        help_text="Organization slug; may be omitted when the caller belongs to one organization.",
    )
    # Method fields, not defaults: a field's default is skipped on PATCH, and the answer then lacks
    # a property the schema requires; a project made by an org token has no owner (null).
    owner = serializers.SerializerMethodField()
    slug = serializers.SlugField(max_length=60, required=False)
    endpoint_count = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "organization",
            "name",
            "slug",
            "owner",
            "use_case",
            "stage",
            "risk_tier",
            "data_classification",
            "monthly_budget_usd",
            "expected_peak_rpm",
            "endpoint_count",
            "created_at",
            "updated_at",
        ]
        validators = []  # uniqueness is the service's job (one clear error, on every path)

    def get_owner(self, project) -> str | None:
        return project.owner.username if project.owner_id else None

    def get_endpoint_count(self, project) -> int:
        count = getattr(project, "endpoint_count", None)  # annotated by the list's queryset
        return count if count is not None else project.endpoints.count()

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["organization"].queryset = organization_list(access=request_access(request))
        if self.instance is not None:
            fields["organization"].read_only = True  # projects do not move between tenants
        return fields

    def validate(self, attrs):
        if self.instance is None and "organization" not in attrs:
            orgs = list(self.fields["organization"].queryset[:2])
            if len(orgs) != 1:
                raise serializers.ValidationError({"organization": ["Required: you belong to several organizations."]})
            attrs["organization"] = orgs[0]
        return attrs


class ProjectFilter(FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")

    class Meta:
        model = Project
        fields = ["organization", "stage", "risk_tier", "data_classification"]


class ProjectViewSet(IdempotentCreateMixin, viewsets.ModelViewSet):
    """Projects (one GenAI PoC each) in the caller's organizations."""

    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter
    ordering_fields = ["name", "created_at", "stage"]

    def get_queryset(self):
        return project_list(access=request_access(self.request))

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        organization = data.pop("organization")
        serializer.instance = services.project_create(
            access=request_access(self.request), organization=organization, **data
        )

    def perform_update(self, serializer):
        serializer.instance = services.project_update(
            access=request_access(self.request), project=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.project_delete(access=request_access(self.request), project=instance)


def project_in_scope(request, pk) -> Project:
    """The caller's project `pk`, for the project resources other apps serve under
    /api/v1/projects/{id}/ (cost, traffic, readiness, findings); 404 for anyone else's."""
    return get_object_or_404(project_list(access=request_access(request)), pk=pk)


class EndpointSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.none())
    organization = serializers.CharField(source="project.organization.slug", read_only=True)
    base_url = serializers.CharField(max_length=500, validators=[_http_url])
    metrics_url = serializers.CharField(max_length=500, required=False, allow_blank=True, validators=[_http_url])
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="Stored encrypted; never returned. Omit or leave empty on update to keep the stored key; "
        "a base_url on another origin (scheme, host, port) drops it unless a key is given with it.",
    )
    clear_api_key = serializers.BooleanField(write_only=True, required=False, help_text="Remove the stored key.")
    has_api_key = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "project",
            "organization",
            "name",
            "base_url",
            "api_flavour",
            "model_name",
            "api_key",
            "clear_api_key",
            "has_api_key",
            "metrics_url",
            "price_model",
            "gpu_type",
            "gpus_per_replica",
            "gpu_hourly_usd",
            "min_replicas",
            "max_replicas",
            "input_usd_per_mtok",
            "output_usd_per_mtok",
            "last_check_at",
            "last_check_ok",
            "last_check_detail",
            "request_id_header",
            "compatibility",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["last_check_at", "last_check_ok", "last_check_detail", "compatibility"]
        validators = []

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["project"].queryset = project_list(access=request_access(request))
        if self.instance is not None:
            fields["project"].read_only = True
        return fields

    def get_has_api_key(self, endpoint) -> bool:
        return bool(endpoint.api_key)


class EndpointFilter(FilterSet):
    organization = django_filters.CharFilter(field_name="project__organization__slug")
    project = IdFilter(field_name="project_id")

    class Meta:
        model = Endpoint
        fields = ["organization", "project", "price_model", "api_flavour"]


@method_decorator(sensitive_post_parameters("api_key"), name="dispatch")
class EndpointViewSet(IdempotentCreateMixin, viewsets.ModelViewSet):
    """Inference endpoints. API keys are write-only: the API never returns them. An update answers
    `api_key_dropped` (true when a base_url on another origin dropped the stored key) and a `notice`."""

    serializer_class = EndpointSerializer
    filterset_class = EndpointFilter
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return endpoint_list(access=request_access(self.request))

    # The serializer holds the key typed in; every frame from here down shows as stars on an error page.
    @method_decorator(sensitive_variables())
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("clear_api_key", None)
        project = data.pop("project")
        serializer.instance = services.endpoint_create(access=request_access(self.request), project=project, **data)

    def perform_update(self, serializer):
        serializer.instance = services.endpoint_update(
            access=request_access(self.request), endpoint=serializer.instance, **serializer.validated_data
        )
        self.api_key_dropped = serializer.instance.api_key_dropped

    @method_decorator(sensitive_variables())
    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        response.data["api_key_dropped"] = getattr(self, "api_key_dropped", False)
        if response.data["api_key_dropped"]:
            response.data["notice"] = services.KEY_DROPPED_NOTICE
        return response

    def perform_destroy(self, instance):
        services.endpoint_delete(access=request_access(self.request), endpoint=instance)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ConnectionTestResult",
            {
                "ok": serializers.BooleanField(),
                "message": serializers.CharField(),
                "url": serializers.CharField(),
                "models": serializers.ListField(child=serializers.CharField()),
                "status_code": serializers.IntegerField(allow_null=True),
                "elapsed_ms": serializers.FloatField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        """Call `{base_url}/models` through the guarded client and report what came back."""
        endpoint = self.get_object()
        result = services.endpoint_test_connection(access=request_access(request), endpoint=endpoint)
        return Response(result, status=status.HTTP_200_OK)
