from rest_framework import mixins, serializers, viewsets

from apps.core.drf import StrictFieldsMixin
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin
from apps.projects.selectors import project_list
from apps.reports import services
from apps.reports.models import Report, Trigger
from apps.reports.selectors import report_list


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
