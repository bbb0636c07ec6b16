import django_filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers, viewsets

from apps.core.drf import FilterSet
from apps.core.models import AuditEvent
from apps.orgs.access import request_access
from apps.orgs.models import Membership, Organization
from apps.orgs.selectors import membership_list, organization_list


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.orgs.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An organization API token (rdy_…)."}


class OrganizationViewSet(viewsets.ReadOnlyModelViewSet):
    """The organizations the caller belongs to (a token: its own one), with the caller's role."""

    class OrganizationSerializer(serializers.ModelSerializer):
        role = serializers.SerializerMethodField()

        class Meta:
            model = Organization
            fields = ["id", "name", "slug", "role", "created_at"]

        def get_role(self, org) -> str:
            return request_access(self.context["request"]).roles.get(org.pk, "")

    serializer_class = OrganizationSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return organization_list(access=request_access(self.request))


class MembershipFilter(FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")
    function = django_filters.CharFilter(field_name="functions", lookup_expr="icontains")

    class Meta:
        model = Membership
        fields = ["organization", "role", "function"]


class MembershipViewSet(viewsets.ReadOnlyModelViewSet):
    """Who belongs to which organization, with role and functions. Read-only over the API."""

    class MembershipSerializer(serializers.ModelSerializer):
        organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
        username = serializers.CharField(source="user.username", read_only=True)
        email = serializers.CharField(source="user.email", read_only=True)

        class Meta:
            model = Membership
            fields = ["id", "organization", "username", "email", "role", "functions", "created_at"]

    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter

    def get_queryset(self):
        return membership_list(access=request_access(self.request))


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
