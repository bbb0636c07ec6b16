from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.drf import StrictFieldsMixin
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin
from apps.projects.selectors import project_list
from apps.signoffs import services
from apps.signoffs.models import FollowUp, SignoffDecision, Verdict
from apps.signoffs.selectors import decision_list, follow_up_list


class SignoffSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    project = serializers.PrimaryKeyRelatedField(queryset=SignoffDecision.objects.none())
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    conditions = serializers.ListField(child=serializers.CharField(max_length=500), required=False, default=list)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    stale = serializers.SerializerMethodField()

    class Meta:
        model = SignoffDecision
        fields = [
            "id",
            "project",
            "function",
            "verdict",
            "reason",
            "conditions",
            "decided_by",
            "created_at",
            "fingerprint",
            "evidence",
            "stale",
            "stale_at",
            "stale_reason",
            "superseded_at",
        ]
        read_only_fields = ["created_at", "fingerprint", "evidence", "stale_at", "stale_reason", "superseded_at"]
        extra_kwargs = {"reason": {"required": False}}

    def get_fields(self):
        fields = super().get_fields()
        if "request" in self.context:
            fields["project"].queryset = project_list(access=request_access(self.context["request"]))
        return fields

    def get_stale(self, obj) -> bool:
        return obj.stale_at is not None


class SignoffViewSet(IdempotentCreateMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Sign-off decisions (approve, approve with conditions, reject) per project and function. A person
    holding the function decides; tokens cannot sign. Each records the fingerprint of what it saw."""

    serializer_class = SignoffSerializer
    filterset_fields = ["project", "function", "verdict"]

    def get_queryset(self):
        return decision_list(access=request_access(self.request))

    def perform_create(self, serializer):
        serializer.instance = services.signoff_decide(access=request_access(self.request), **serializer.validated_data)


class FollowUpSerializer(serializers.ModelSerializer):
    closed_by = serializers.CharField(source="closed_by.username", read_only=True, default=None)
    function = serializers.CharField(source="decision.function", read_only=True)

    class Meta:
        model = FollowUp
        fields = ["id", "project", "decision", "function", "text", "status", "closed_by", "closed_at", "note"]


class FollowUpViewSet(viewsets.ReadOnlyModelViewSet):
    """Conditions of approvals, tracked until done."""

    serializer_class = FollowUpSerializer
    filterset_fields = ["project", "status"]

    def get_queryset(self):
        return follow_up_list(access=request_access(self.request))

    @extend_schema(
        request=inline_serializer("FollowUpDone", {"note": serializers.CharField(required=False)}),
        responses=FollowUpSerializer,
    )
    @action(detail=True, methods=["post"])
    def done(self, request, pk=None):
        follow_up = services.follow_up_close(
            access=request_access(request), follow_up=self.get_object(), note=str(request.data.get("note", ""))
        )
        return Response(FollowUpSerializer(follow_up).data)
