from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.drf import StrictFieldsMixin
from apps.core.errors import ApplicationError
from apps.core.parsers import JSONParser
from apps.costs import services, stored
from apps.costs.models import Price, TrafficProfile, UsageLog
from apps.orgs.access import request_access
from apps.orgs.idempotency import idempotent
from apps.probes.api import PlanSerializer
from apps.probes.selectors import latest_runs
from apps.projects.api import project_in_scope
from apps.projects.selectors import project_list


class PriceSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Price
        fields = [
            "id",
            "organization",
            "kind",
            "name",
            "provider",
            "usd_per_gpu_hour",
            "spot_usd_per_gpu_hour",
            "hbm_gb",
            "hbm_bandwidth_gb_per_s",
            "usd_per_mtok_input",
            "usd_per_mtok_output",
            "source",
            "as_of",
            "updated_at",
        ]
        read_only_fields = ["kind", "updated_at"]


class PriceViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The organization's price catalog (GPUs per GPU-hour, hosted models per 1M tokens), editable."""

    serializer_class = PriceSerializer
    filterset_fields = ["kind", "name"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return Price.objects.visible_to(request_access(self.request)).select_related("organization")

    def perform_update(self, serializer):
        serializer.instance = services.price_update(
            access=request_access(self.request), price=serializer.instance, **serializer.validated_data
        )


class TrafficSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = TrafficProfile
        fields = services.TRAFFIC_FIELDS


class UsageLogSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    file = serializers.FileField(write_only=True, required=False)

    class Meta:
        model = UsageLog
        fields = [
            "id",
            "project",
            "name",
            "file",
            "stored_name",
            "size_bytes",
            "status",
            "analysis",
            "error",
            "created_at",
            "analysed_at",
        ]
        read_only_fields = ["name", "size_bytes", "status", "analysis", "error", "created_at", "analysed_at"]

    def validate(self, attrs):
        if bool(attrs.get("file")) == bool(attrs.get("stored_name")):
            raise serializers.ValidationError(
                {"file": ["Give either a file to upload or the stored_name of a log in the org's import folder."]}
            )
        return attrs

    def get_fields(self):
        fields = super().get_fields()
        if "request" in self.context:
            fields["project"].queryset = project_list(access=request_access(self.context["request"]))
        return fields


class StoredLogSerializer(serializers.Serializer):
    name = serializers.CharField()
    size_bytes = serializers.IntegerField()
    modified = serializers.DateTimeField()


class ReplaySerializer(StrictFieldsMixin, serializers.Serializer):
    endpoint = serializers.IntegerField()
    scale = serializers.FloatField(default=1.0)
    seconds_per_minute = serializers.FloatField(default=6.0)


class TenantsQuerySerializer(serializers.Serializer):
    scale = serializers.FloatField(default=1.0)
    quiet = serializers.IntegerField(default=3)


class TenantsReplaySerializer(StrictFieldsMixin, serializers.Serializer):
    endpoint = serializers.IntegerField()
    scale = serializers.FloatField(default=1.0, help_text="every rate and the burst x this")
    quiet = serializers.IntegerField(default=1, help_text="quiet tenants beside the noisy one (one worker each)")


class UsageLogViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Usage logs: a multipart upload (`project`, `file`) or a log already stored on the server
    (`project`, `stored_name`; see `stored`); a worker analyses each. `apply` takes a log's traffic
    shape as the project's expected traffic; `replay` makes a probe plan of its busiest hour.
    DELETE removes a log and its uploaded file, freeing the organization's storage quota."""

    serializer_class = UsageLogSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["project", "status"]

    def get_queryset(self):
        return UsageLog.objects.visible_to(request_access(self.request)).select_related("project")

    def perform_create(self, serializer):
        data, access = serializer.validated_data, request_access(self.request)
        if data.get("stored_name"):
            serializer.instance = services.usage_log_from_stored(
                access=access, project=data["project"], name=data["stored_name"]
            )
        else:
            serializer.instance = services.usage_log_upload(access=access, project=data["project"], upload=data["file"])

    def perform_destroy(self, instance):
        services.usage_log_delete(access=request_access(self.request), log=instance)

    @extend_schema(
        parameters=[OpenApiParameter("project", int, required=True)], responses=StoredLogSerializer(many=True)
    )
    @action(detail=False, methods=["get"], url_path="stored", pagination_class=None)  # a short listing: one page
    def stored_logs(self, request):
        """The logs stored on the server in the project's organization's import folder."""
        project_id = request.query_params.get("project", "")
        if not project_id.isdigit():
            raise ApplicationError("Give ?project=<id>.", detail={"project": ["A project id is required."]})
        project = get_object_or_404(project_list(access=request_access(request)), pk=int(project_id))
        files = stored.listing(settings.READINESS_USAGE_LOG_IMPORT_DIR, project.organization.slug)
        return Response(StoredLogSerializer(files, many=True).data)

    @extend_schema(request=ReplaySerializer, responses=PlanSerializer)
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def replay(self, request, pk=None):
        """A probe plan replaying the log's busiest hour on one of the project's endpoints (honours
        Idempotency-Key: a retried call returns the same plan instead of failing on its name)."""
        log = self.get_object()
        body = ReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data

        def produce():
            endpoint = log.project.endpoints.filter(pk=data["endpoint"]).first()
            plan = services.usage_log_replay_plan(
                access=request_access(request),
                log=log,
                endpoint=endpoint,
                scale=data["scale"],
                seconds_per_minute=data["seconds_per_minute"],
            )
            return Response(PlanSerializer(plan, context={"request": request}).data, status=201)

        return idempotent(request, produce)

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("scale", float), OpenApiParameter("quiet", int)],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"], url_path="tenants-plan")
    def tenants_plan(self, request, pk=None):
        """A noisy-neighbour plan from the log, for `manage.py probe --tenants`: the user with the
        busiest minute bursts it, the next `quiet` users (default 3) send at their own average rates,
        all x `scale` (default 1)."""
        log = self.get_object()
        query = TenantsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(services.usage_log_tenants_plan(log, **query.validated_data))

    @extend_schema(request=TenantsReplaySerializer, responses=PlanSerializer)
    @action(detail=True, methods=["post"], url_path="tenants-replay", parser_classes=[JSONParser])
    def tenants_replay(self, request, pk=None):
        """A noisy-neighbour probe plan from the log on one of the project's endpoints (honours
        Idempotency-Key). Give each tenant a key afterwards with PATCH on the plan's tenant_keys."""
        log = self.get_object()
        body = TenantsReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data

        def produce():
            plan = services.usage_log_tenants_plan_create(
                access=request_access(request),
                log=log,
                endpoint=log.project.endpoints.filter(pk=data["endpoint"]).first(),
                scale=data["scale"],
                quiet=data["quiet"],
            )
            return Response(PlanSerializer(plan, context={"request": request}).data, status=201)

        return idempotent(request, produce)

    @extend_schema(request=None, responses=TrafficSerializer)
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def apply(self, request, pk=None):
        profile = services.usage_log_apply(access=request_access(request), log=self.get_object())
        return Response(TrafficSerializer(profile).data)


class ProjectCostView(APIView):
    """The monthly options (always-on, autoscaled, business hours, spot, hosted models) for the
    expected traffic at the measured goodput, the cheapest that meets the SLOs and the saving."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        project = project_in_scope(request, pk)
        runs = latest_runs(project)
        return Response(
            {
                "project": project.pk,
                "cost": services.cost_for(project, runs),
                # The newest noisy-neighbour run: each tenant's $ per 1M output tokens within its SLO.
                "tenants": services.tenant_costs(project, runs),
            }
        )


class ProjectTrafficView(APIView):
    """The expected traffic the projections size capacity for (PUT replaces it)."""

    @extend_schema(responses={200: TrafficSerializer})
    def get(self, request, pk: int):
        project = project_in_scope(request, pk)
        profile = TrafficProfile.objects.filter(project=project).first()
        if profile is None:  # an empty 200 is no JSON at all: say what is missing instead
            raise ApplicationError("No expected traffic is set for this project yet.", code="not_found", status=404)
        return Response(TrafficSerializer(profile).data)

    @extend_schema(request=TrafficSerializer, responses={200: TrafficSerializer})
    def put(self, request, pk: int):
        project = project_in_scope(request, pk)
        body = TrafficSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        profile = services.traffic_save(access=request_access(request), project=project, **body.validated_data)
        return Response(TrafficSerializer(profile).data)
