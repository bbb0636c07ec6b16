from rest_framework import mixins, serializers, viewsets

from apps.core.drf import StrictFieldsMixin
from apps.costs import services
from apps.costs.models import Price, TrafficProfile
from apps.orgs.access import request_access
from apps.orgs.selectors import organization_list


class PriceSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Price
        fields = ["id", "organization", "kind", "name", "provider", "usd_per_gpu_hour", "spot_usd_per_gpu_hour",
                  "hbm_gb", "hbm_bandwidth_gb_per_s", "usd_per_mtok_input", "usd_per_mtok_output", "source",
                  "as_of", "updated_at"]  # fmt: skip
        read_only_fields = ["kind", "updated_at"]


class PriceViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The organization's price catalog (GPUs per GPU-hour, hosted models per 1M tokens), editable."""

    serializer_class = PriceSerializer
    filterset_fields = ["kind", "name"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        access = request_access(self.request)
        for org in organization_list(access=access):
            services.ensure_catalog(org)
        return Price.objects.visible_to(access).select_related("organization")

    def perform_update(self, serializer):
        serializer.instance = services.price_update(
            access=request_access(self.request), price=serializer.instance, **serializer.validated_data
        )


class TrafficSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = TrafficProfile
        fields = services.TRAFFIC_FIELDS
