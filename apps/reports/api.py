from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.drf import StrictFieldsMixin
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin
from apps.projects.api import project_in_scope
from apps.projects.selectors import project_list
from apps.reports import services
from apps.reports.models import Report, Trigger
from apps.reports.refresh import refresh_pending
from apps.reports.selectors import decided_before_today, project_status, report_list
from apps.signoffs.services import gate_states


class ReportSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    project = serializers.PrimaryKeyRelatedField(queryset=Report.objects.none())
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "organization",
            "project",
            "number",
            "created_at",
            "created_label",
            "trigger",
            "outcome",
            "fingerprint",
            "previous",
        ]
        read_only_fields = ["number", "created_at", "created_label", "trigger", "outcome", "fingerprint", "previous"]

    def get_fields(self):
        fields = super().get_fields()
        if "request" in self.context:
            fields["project"].queryset = project_list(access=request_access(self.context["request"]))
        return fields


class ReportDetailSerializer(ReportSerializer):
    class Meta(ReportSerializer.Meta):
        fields = ReportSerializer.Meta.fields + ["snapshot"]


class ReportViewSet(IdempotentCreateMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Go/no-go reports: immutable snapshots of the decision, its reasons and every input. POST
    {"project": id} takes one now; the detail (`snapshot`) is the JSON export."""

    filterset_fields = ["project", "outcome", "trigger"]

    def get_queryset(self):
        qs = report_list(access=request_access(self.request))
        return qs.defer("snapshot") if self.action == "list" else qs

    def get_serializer_class(self):
        return ReportSerializer if self.action in ("list", "create") else ReportDetailSerializer

    def perform_create(self, serializer):
        serializer.instance = services.report_create(
            access=request_access(self.request), project=serializer.validated_data["project"], trigger=Trigger.API
        )


class ProjectReadinessView(APIView):
    """The current go/no-go decision with its reasons (each linking to its evidence), readiness per
    category, the gates, open follow-ups and the latest report: everything a ticket or CI job needs.

    A read: the decision as last evaluated (by a queued task after every change, and on the
    clock), with `evaluated_at` and `age_s` so a pipeline can tell how fresh it is, and
    `refreshing` true while a re-evaluation after a change is queued, or while the decision is
    of an earlier (UTC) day than today, before beat's midnight re-evaluation (poll until false);
    `outcome` is null before the first evaluation."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        project = project_in_scope(request, pk)
        status_row = project_status(project)
        evaluated_at = status_row.evaluated_at if status_row else None
        latest = project.reports.order_by("-number").only("pk", "number", "outcome", "created_at").first()
        absolute = request.build_absolute_uri
        return Response(
            {
                "project": project.pk,
                "outcome": status_row.outcome if status_row else None,
                "evaluated_at": evaluated_at,
                "age_s": round((timezone.now() - evaluated_at).total_seconds()) if evaluated_at else None,
                "refreshing": refresh_pending(project.pk) or decided_before_today(status_row),
                "reasons": [
                    {**r, "evidence": absolute(r["evidence"]) if r["evidence"] else ""}
                    for r in (status_row.reasons if status_row else [])
                ],
                "categories": status_row.categories if status_row else [],
                "gates": [
                    {
                        "function": g.function,
                        "required": g.required,
                        "approvals": g.approvals,
                        "status": g.status,
                        "open_conditions": g.open_conditions,
                    }
                    for g in gate_states(project)
                ],
                "latest_report": {
                    "id": latest.pk,
                    "number": latest.number,
                    "outcome": latest.outcome,
                    "created_at": latest.created_at,
                }
                if latest
                else None,
            }
        )
