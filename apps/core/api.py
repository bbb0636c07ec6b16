import django_filters
from rest_framework import serializers, viewsets

from apps.core.drf import FilterSet
from apps.core.models import AuditEvent
from apps.orgs.access import request_access


class AuditEventFilter(FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["organization", "action", "object_type", "object_id", "since", "until"]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The append-only audit trail of the caller's organizations, newest first."""

    class AuditEventSerializer(serializers.ModelSerializer):
        organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

        class Meta:
            model = AuditEvent
            fields = [
                "id",
                "organization",
                "actor_label",
                "action",
                "object_type",
                "object_id",
                "object_repr",
                "changes",
                "created_at",
            ]

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return AuditEvent.objects.visible_to(request_access(self.request)).select_related("organization")
