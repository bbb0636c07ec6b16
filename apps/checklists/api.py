import django_filters
from django.db.models import F
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.checklists import services
from apps.checklists.models import Checklist, ChecklistTemplate, ItemResponse, RiskLevel, Status, TemplateItem, Waiver
from apps.checklists.selectors import checklist_list, response_list, template_list, waiver_list
from apps.core.drf import FilterSet, IdFilter, StrictFieldsMixin, parse_id
from apps.core.errors import ApplicationError
from apps.core.parsers import JSONParser
from apps.orgs.access import request_access
from apps.orgs.idempotency import IdempotentCreateMixin, idempotent
from apps.orgs.selectors import organization_list
from apps.projects.selectors import project_list


def _access(serializer):
    return request_access(serializer.context["request"])


# --- templates -----------------------------------------------------------------------------------


class TemplateItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = TemplateItem
        fields = ["key", "title", "guidance", "references", "severity", "function", "evidence_kind", "rule"]


class TemplateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", queryset=ChecklistTemplate.objects.none())
    items = serializers.JSONField(
        help_text="A list of items: key, title, guidance, references, severity, "
        "function, evidence_kind, rule (automatic items)."
    )
    key = serializers.SlugField(required=False, help_text="Same key as an existing template: its next version.")

    class Meta:
        model = ChecklistTemplate
        fields = [
            "id",
            "organization",
            "key",
            "version",
            "name",
            "category",
            "shipped",
            "change_note",
            "items",
            "created_at",
        ]
        read_only_fields = ["version", "shipped", "created_at"]

    def get_fields(self):
        fields = super().get_fields()
        if "request" in self.context:
            fields["organization"].queryset = organization_list(access=_access(self))
        return fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["items"] = TemplateItemSerializer(instance.items.all(), many=True).data
        return data


class TemplateViewSet(IdempotentCreateMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Checklist templates, versioned. POST with the key of an existing template saves its next version;
    versions never change once saved."""

    serializer_class = TemplateSerializer
    filterset_fields = ["key", "category", "shipped"]

    def get_queryset(self):
        return template_list(access=request_access(self.request)).prefetch_related("items")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.template_save_version(
            access=request_access(self.request),
            organization=data["organization"],
            key=data.get("key", ""),
            name=data["name"],
            category=data["category"],
            items=data["items"],
            change_note=data.get("change_note", ""),
        )


# --- checklists ----------------------------------------------------------------------------------


class ResponseSerializer(serializers.ModelSerializer):
    item = TemplateItemSerializer(read_only=True)
    project = serializers.IntegerField(source="checklist.project_id", read_only=True)
    answered_by = serializers.CharField(source="answered_label", read_only=True)
    evidence_file = serializers.SerializerMethodField()
    waivers = serializers.SerializerMethodField()

    class Meta:
        model = ItemResponse
        fields = [
            "id",
            "project",
            "checklist",
            "item",
            "status",
            "na_reason",
            "evidence_text",
            "evidence_url",
            "evidence_file",
            "figure",
            "explanation",
            "source",
            "answered_by",
            "answered_at",
            "waivers",
        ]

    def get_evidence_file(self, obj) -> str | None:
        return obj.evidence_file.name.rsplit("/", 1)[-1] if obj.evidence_file else None

    def get_waivers(self, obj) -> list[int]:
        return [w.pk for w in obj.waivers.all()]


class ChecklistSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    project = serializers.PrimaryKeyRelatedField(queryset=Checklist.objects.none())
    template = serializers.PrimaryKeyRelatedField(queryset=ChecklistTemplate.objects.none())
    template_name = serializers.CharField(source="template.name", read_only=True)
    version = serializers.IntegerField(source="template.version", read_only=True)
    category = serializers.CharField(source="template.category", read_only=True)

    class Meta:
        model = Checklist
        fields = ["id", "project", "template", "template_name", "version", "category", "created_at"]
        read_only_fields = ["created_at"]

    def get_fields(self):
        fields = super().get_fields()
        if "request" in self.context:
            fields["project"].queryset = project_list(access=_access(self))
            fields["template"].queryset = template_list(access=_access(self))
        return fields


class ChecklistDetailSerializer(ChecklistSerializer):
    responses = serializers.SerializerMethodField()

    class Meta(ChecklistSerializer.Meta):
        fields = ChecklistSerializer.Meta.fields + ["responses"]

    def get_responses(self, obj) -> list[dict]:
        rows = services.current_responses(obj).prefetch_related("waivers")
        return ResponseSerializer(rows, many=True, context=self.context).data


class ChecklistViewSet(IdempotentCreateMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """A project's checklists; the detail view holds every item with its current answer."""

    filterset_fields = ["project"]

    def get_queryset(self):
        return checklist_list(access=request_access(self.request))

    def get_serializer_class(self):
        return ChecklistDetailSerializer if self.action == "retrieve" else ChecklistSerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.checklist_add(
            access=request_access(self.request), project=data["project"], template=data["template"]
        )

    @extend_schema(
        request=inline_serializer("Upgrade", {"template": serializers.IntegerField(required=False)}),
        responses={200: dict},
    )
    @action(detail=True, methods=["post"])
    def upgrade(self, request, pk=None):
        """Move to a newer version of the template (default: the latest); returns what changed."""
        checklist = self.get_object()
        target = services.latest_version(checklist.template)
        if request.data.get("template"):
            template_id = parse_id(request.data["template"], "template")
            target = template_list(access=request_access(request)).filter(pk=template_id).first()
            if target is None:
                raise ApplicationError("Unknown template.", detail={"template": ["Not found."]})
        changes = services.checklist_upgrade(access=request_access(request), checklist=checklist, template=target)
        return Response({"version": target.version, "changes": changes})


class AnswerSerializer(StrictFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    na_reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    evidence_text = serializers.CharField(required=False, allow_blank=True, default="")
    evidence_url = serializers.URLField(required=False, allow_blank=True, max_length=500, default="")
    evidence_file = serializers.FileField(required=False, allow_null=True, default=None)


class ResponseFilter(FilterSet):
    project = IdFilter(field_name="checklist__project_id")
    evidence_kind = django_filters.CharFilter(field_name="item__evidence_kind")
    severity = django_filters.CharFilter(field_name="item__severity")
    key = django_filters.CharFilter(field_name="item__key")

    class Meta:
        model = ItemResponse
        fields = ["project", "checklist", "status", "evidence_kind", "severity", "key"]


class ResponseViewSet(viewsets.ReadOnlyModelViewSet):
    """Checklist item answers. `answer` sets a manual item (people) or an external one (e.g. a red-team
    pipeline's token); automatic items follow their rule."""

    serializer_class = ResponseSerializer
    filterset_class = ResponseFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        # Only answers to the checklist's current template version; older ones are history.
        qs = response_list(access=request_access(self.request)).prefetch_related("waivers")
        return qs.filter(item__template_id=F("checklist__template_id"))

    @extend_schema(request=AnswerSerializer, responses=ResponseSerializer)
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        response = self.get_object()
        body = AnswerSerializer(data=request.data)
        body.is_valid(raise_exception=True)

        def produce():
            saved = services.response_answer(access=request_access(request), response=response, **body.validated_data)
            return Response(ResponseSerializer(saved, context=self.get_serializer_context()).data)

        return idempotent(request, produce)


# --- waivers -------------------------------------------------------------------------------------


class WaiverSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    response = serializers.PrimaryKeyRelatedField(queryset=Waiver.objects.none())
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    state = serializers.SerializerMethodField()
    item = serializers.CharField(source="response.item.key", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, default=None)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    revoked_by = serializers.CharField(source="revoked_by.username", read_only=True, default=None)

    class Meta:
        model = Waiver
        fields = [
            "id",
            "response",
            "item",
            "reason",
            "risk_level",
            "expires_on",
            "status",
            "state",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "revoked_by",
            "revoked_at",
            "revoke_reason",
            "created_at",
        ]
        read_only_fields = ["status", "decided_at", "decision_note", "revoked_at", "revoke_reason", "created_at"]

    def get_fields(self):
        fields = super().get_fields()
        if "request" in self.context:
            fields["response"].queryset = response_list(access=_access(self))
        return fields

    def get_state(self, obj) -> str:
        return obj.state_on(timezone.localdate())


NoteSerializer = inline_serializer("WaiverNote", {"note": serializers.CharField(required=False)})


class WaiverViewSet(IdempotentCreateMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Waivers: requested with a reason, a risk level and an expiry; approved or rejected by someone
    else holding the item's function; revocable. Never deleted."""

    serializer_class = WaiverSerializer
    filterset_fields = ["status", "response"]

    def get_queryset(self):
        return waiver_list(access=request_access(self.request))

    def perform_create(self, serializer):
        serializer.instance = services.waiver_request(access=request_access(self.request), **serializer.validated_data)

    def _decide(self, request, approve: bool):
        waiver = services.waiver_decide(
            access=request_access(request),
            waiver=self.get_object(),
            approve=approve,
            note=str(request.data.get("note", "")),
        )
        return Response(WaiverSerializer(waiver, context=self.get_serializer_context()).data)

    @extend_schema(request=NoteSerializer, responses=WaiverSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, True)

    @extend_schema(request=NoteSerializer, responses=WaiverSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(request, False)

    @extend_schema(
        request=inline_serializer("WaiverRevoke", {"reason": serializers.CharField()}), responses=WaiverSerializer
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        waiver = services.waiver_revoke(
            access=request_access(request), waiver=self.get_object(), reason=str(request.data.get("reason", ""))
        )
        return Response(WaiverSerializer(waiver, context=self.get_serializer_context()).data)
