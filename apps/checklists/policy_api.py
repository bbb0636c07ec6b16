"""The readiness policy over the API: GET and PATCH /api/v1/readiness-policies/<org slug>/."""

from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.response import Response

from apps.checklists.policy import MAX_REQUIRED_CATEGORIES, known_categories, organization_policy_update
from apps.orgs.access import request_access
from apps.orgs.models import Organization
from apps.orgs.permissions import OrgAccessPermission
from apps.orgs.selectors import organization_list


class PolicyPermission(OrgAccessPermission):
    """The object is the organization itself (it has no path to one)."""

    def has_object_permission(self, request, view, obj):
        return request.method in permissions.SAFE_METHODS or request_access(request).can_write(obj.pk)


class CategoryListField(serializers.ListField):
    """The length is checked before the items: DRF would otherwise answer one error per item of
    a list of ten thousand."""

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > MAX_REQUIRED_CATEGORIES:
            self.fail("max_length", max_length=MAX_REQUIRED_CATEGORIES)
        return super().to_internal_value(data)


class ReadinessPolicySerializer(serializers.ModelSerializer):
    organization = serializers.CharField(source="slug", read_only=True)
    required_checklist_categories = CategoryListField(
        child=serializers.CharField(max_length=40), max_length=MAX_REQUIRED_CATEGORIES
    )
    known_categories = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["organization", "required_checklist_categories", "known_categories"]

    def get_known_categories(self, org) -> list[str]:
        return known_categories(org)


class ReadinessPolicyViewSet(mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """The checklist categories every project of the organization needs before it can be GO.
    Anyone in the organization reads it; owners and admins change it (the projects are re-decided)."""

    serializer_class = ReadinessPolicySerializer
    permission_classes = [PolicyPermission]
    lookup_field = "slug"
    http_method_names = ["get", "put", "patch", "head", "options"]

    def get_queryset(self):
        return organization_list(access=request_access(self.request))

    def update(self, request, *args, **kwargs):
        org = self.get_object()
        serializer = self.get_serializer(org, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        categories = serializer.validated_data.get("required_checklist_categories", org.required_checklist_categories)
        org = organization_policy_update(
            access=request_access(request), organization=org, required_checklist_categories=categories
        )
        return Response(self.get_serializer(org).data)
