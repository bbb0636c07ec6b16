import csv

import django_filters
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from apps.core.drf import CSVErrorsAsJSONMixin, CSVRenderer, FilterSet, IdFilter, StrictFieldsMixin
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin, idempotent
from apps.probes import services
from apps.probes.engine.report import request_rows
from apps.probes.models import ProbePlan, ProbeRun
from apps.probes.schemas import ProfileField, SLOField
from apps.probes.selectors import (
    plan_list,
    run_comparison,
    run_list,
    run_record_rows,
    run_records,
    run_with_shards,
)
from apps.probes.tenant_keys import stored_tenant_keys
from apps.probes.verdict import verdict_for
from apps.projects.selectors import endpoint_list


class PlanSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(queryset=ProbePlan.objects.none())
    organization = serializers.CharField(source="endpoint.project.organization.slug", read_only=True)
    profile = ProfileField()
    slo = SLOField(required=False)
    tenant_keys = serializers.DictField(
        child=serializers.CharField(trim_whitespace=False, allow_blank=False, max_length=4096),
        write_only=True,
        required=False,
        help_text="A noisy-neighbour plan's keys, tenant name to key: stored encrypted, never returned, sent only "
        "to the endpoint's origin of the time they were given. Absent keeps them; {} removes them.",
    )
    tenant_keys_set = serializers.SerializerMethodField(help_text="The tenants that have a stored key.")

    class Meta:
        model = ProbePlan
        fields = [
            "id",
            "endpoint",
            "organization",
            "name",
            "profile",
            "warmup_s",
            "cooldown_s",
            "prompt_tokens",
            "prompts_jsonl",
            "max_tokens",
            "seed",
            "slo",
            "metrics_url",
            "parallelism",
            "request_timeout_s",
            "schedule_cron",
            "regression_threshold_pct",
            "request_id_header",
            "tenant_keys",
            "tenant_keys_set",
            "created_at",
            "updated_at",
        ]
        validators = []

    def get_tenant_keys_set(self, plan) -> list[str]:
        return sorted(stored_tenant_keys(plan))

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["endpoint"].queryset = endpoint_list(access=request_access(request))
        if self.instance is not None:
            fields["endpoint"].read_only = True
        return fields


class PlanFilter(FilterSet):
    organization = django_filters.CharFilter(field_name="endpoint__project__organization__slug")
    endpoint = IdFilter(field_name="endpoint_id")
    project = IdFilter(field_name="endpoint__project_id")

    class Meta:
        model = ProbePlan
        fields = ["organization", "endpoint", "project"]


class RunListSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan_name = serializers.CharField(source="plan.name", read_only=True)
    headline = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()

    class Meta:
        model = ProbeRun
        fields = [
            "id",
            "organization",
            "plan",
            "plan_name",
            "status",
            "trigger",
            "shard_count",
            "planned_duration_s",
            "created_at",
            "started_at",
            "finished_at",
            "request_count",
            "output_tokens",
            "error_message",
            "headline",
            "regression",
            "verdict",
        ]

    def get_verdict(self, run) -> dict:
        """What the run proves: the same verdict as its page, the decision, reports and webhooks."""
        return verdict_for(run).as_dict()

    def get_headline(self, run) -> dict | None:
        o = (run.summary or {}).get("overall")
        if not o:
            return None
        return {
            "ttft_p95_ms": o["ttft_ms"].get("p95"),
            "e2e_p99_ms": o["e2e_ms"].get("p99"),
            "output_token_throughput": o["output_token_throughput"],
            "error_rate": o["error_rate"],
            "slo_met": verdict_for(run).slo_met,
            "client_saturated": run.summary.get("client_saturated"),
        }


class RunDetailSerializer(RunListSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(RunListSerializer.Meta):
        fields = RunListSerializer.Meta.fields + ["config", "progress", "summary", "diagnosis", "cancel_requested_at"]

    def get_progress(self, run) -> dict:
        return run.progress()


class PlanViewSet(IdempotentCreateMixin, viewsets.ModelViewSet):
    """Probe plans: how an endpoint is probed (profile, prompts, SLOs, parallelism, schedule)."""

    serializer_class = PlanSerializer
    filterset_class = PlanFilter
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return plan_list(access=request_access(self.request)).select_related("endpoint__project__organization")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        endpoint = data.pop("endpoint")
        serializer.instance = services.probe_plan_create(access=request_access(self.request), endpoint=endpoint, **data)

    def perform_update(self, serializer):
        serializer.instance = services.probe_plan_update(
            access=request_access(self.request), plan=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.probe_plan_delete(access=request_access(self.request), plan=instance)

    @extend_schema(request=None, responses={201: RunDetailSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a run now. Send an Idempotency-Key so a retried call does not start two runs."""
        plan = self.get_object()

        def produce():
            run = services.probe_run_start(access=request_access(request), plan=plan)
            run = run_with_shards(ProbeRun.objects.filter(pk=run.pk)).get()
            return Response(RunDetailSerializer(run, context=self.get_serializer_context()).data, status=201)

        return idempotent(request, produce)


class RunFilter(FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")
    plan = IdFilter(field_name="plan_id")
    endpoint = IdFilter(field_name="plan__endpoint_id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = ProbeRun
        fields = ["organization", "plan", "endpoint", "status", "trigger", "since"]


class RunViewSet(CSVErrorsAsJSONMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Probe runs: progress while they run, the summary when done, their records, comparisons."""

    filterset_class = RunFilter
    ordering_fields = ["created_at", "status"]

    def get_queryset(self):
        qs = run_list(access=request_access(self.request)).select_related("organization")
        if self.action == "list":
            return qs.defer("config", "timeline")
        return run_with_shards(qs)

    def get_serializer_class(self):
        return RunListSerializer if self.action == "list" else RunDetailSerializer

    @extend_schema(request=None, responses=RunDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop every shard within a few seconds; what was measured is kept (status `cancelled`)."""
        run = services.probe_run_cancel(access=request_access(request), run=self.get_object())
        run = run_with_shards(ProbeRun.objects.filter(pk=run.pk)).get()
        return Response(RunDetailSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv for a streamed CSV of all records")
        ],
        responses={200: serializers.ListSerializer(child=serializers.DictField())},
    )
    @action(detail=True, methods=["get"], renderer_classes=[*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer])
    def records(self, request, pk=None):
        """Per-request records: paginated JSON, or `?format=csv` (or `Accept: text/csv`) streamed."""
        run = self.get_object()
        if request.accepted_renderer.format == CSVRenderer.format:
            return _csv_response(run_records(run), f"run-{run.pk}-requests.csv")
        page = self.paginate_queryset(run_record_rows(run))
        return self.get_paginated_response(page)

    @extend_schema(parameters=[OpenApiParameter("with", int, required=True)], responses={200: dict})
    @action(detail=True, methods=["get"])
    def compare(self, request, pk=None):
        """Headline figures of this run and another run of the same plan, with the deltas."""
        run = self.get_object()
        try:
            other_id = int(request.query_params.get("with", ""))
        except ValueError:
            return Response({"error": {"code": "invalid", "message": "Give ?with=<run id>.", "detail": {}}}, status=400)
        other = self.get_queryset().filter(pk=other_id).first()
        if other is None:
            return Response({"error": {"code": "not_found", "message": "No such run.", "detail": {}}}, status=404)
        if other.plan_id != run.plan_id:
            return Response(
                {"error": {"code": "invalid", "message": "Compare runs of the same plan.", "detail": {}}}, status=400
            )
        return Response({"a": other.pk, "b": run.pk, "rows": run_comparison(other, run)}, status=status.HTTP_200_OK)


class _Echo:
    def write(self, value):
        return value


def _csv_response(records, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def rows():
        header = None
        for row in request_rows(records):
            if header is None:
                header = list(row)
                yield writer.writerow(header)
            yield writer.writerow(row.values())

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class EndpointCompatibilityView(APIView):
    """An endpoint's compatibility report: GET the stored one (null until checked), POST to run the
    check again (a handful of requests, no load; writers only)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        endpoint = get_object_or_404(endpoint_list(access=request_access(request)), pk=pk)
        return Response({"endpoint": endpoint.pk, "compatibility": endpoint.compatibility})

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        endpoint = get_object_or_404(endpoint_list(access=request_access(request)), pk=pk)
        report = services.endpoint_compatibility_check(access=request_access(request), endpoint=endpoint)
        return Response({"endpoint": endpoint.pk, "compatibility": report})
