from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from apps.checklists.api import ChecklistViewSet, ResponseViewSet, TemplateViewSet, WaiverViewSet
from apps.checklists.policy_api import ReadinessPolicyViewSet
from apps.costs.api import PriceViewSet, ProjectCostView, ProjectTrafficView, UsageLogViewSet
from apps.integrations.api import ConnectorViewSet, DeliveryViewSet, ProjectFindingsView
from apps.orgs.api import AuditEventViewSet, MembershipViewSet, OrganizationViewSet
from apps.probes.api import EndpointCompatibilityView, PlanViewSet, RunViewSet
from apps.projects.api import EndpointViewSet, ProjectViewSet
from apps.reports.api import ProjectReadinessView, ReportViewSet
from apps.reports.queue_views import MyQueueView
from apps.signoffs.api import FollowUpViewSet, SignoffViewSet

router = DefaultRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("projects", ProjectViewSet, basename="project")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("audit-events", AuditEventViewSet, basename="auditevent")
router.register("probe-plans", PlanViewSet, basename="probeplan")
router.register("probe-runs", RunViewSet, basename="proberun")
router.register("checklist-templates", TemplateViewSet, basename="checklisttemplate")
router.register("checklists", ChecklistViewSet, basename="checklist")
router.register("checklist-responses", ResponseViewSet, basename="checklistresponse")
router.register("waivers", WaiverViewSet, basename="waiver")
router.register("readiness-policies", ReadinessPolicyViewSet, basename="readinesspolicy")
router.register("signoffs", SignoffViewSet, basename="signoff")
router.register("follow-ups", FollowUpViewSet, basename="followup")
router.register("reports", ReportViewSet, basename="report")
router.register("connectors", ConnectorViewSet, basename="connector")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("prices", PriceViewSet, basename="price")
router.register("usage-logs", UsageLogViewSet, basename="usagelog")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    # The split view serves Swagger UI's start-up code as its own script: the CSP allows no inline one.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=[]), name="docs"),
    path("me/queue/", MyQueueView.as_view(), name="me-queue"),
    # A project's resources that other apps compute, under the project's URL.
    path("projects/<int:pk>/cost/", ProjectCostView.as_view(), name="project-cost"),
    path("projects/<int:pk>/traffic/", ProjectTrafficView.as_view(), name="project-traffic"),
    path("projects/<int:pk>/findings/", ProjectFindingsView.as_view(), name="project-findings"),
    path("projects/<int:pk>/readiness/", ProjectReadinessView.as_view(), name="project-readiness"),
    path("endpoints/<int:pk>/compatibility/", EndpointCompatibilityView.as_view(), name="endpoint-compatibility"),
    path("", include(router.urls)),
]
