from django.urls import path

from apps.costs import views

ORG = "o/<slug:org_slug>/"
urlpatterns = [
    path(ORG + "projects/<slug:slug>/cost/", views.ProjectCostView.as_view(), name="project-cost"),
    path(ORG + "projects/<slug:slug>/usage-logs/", views.UsageLogUploadView.as_view(), name="usage-log-upload"),
    path(
        ORG + "projects/<slug:slug>/usage-logs/stored/",
        views.UsageLogFromStoredView.as_view(),
        name="usage-log-from-stored",
    ),
    path(ORG + "usage-logs/<int:pk>/", views.UsageLogDetailView.as_view(), name="usage-log-detail"),
    path(ORG + "usage-logs/<int:pk>/apply/", views.UsageLogApplyView.as_view(), name="usage-log-apply"),
    path(ORG + "usage-logs/<int:pk>/replay/", views.UsageLogReplayView.as_view(), name="usage-log-replay"),
    path(
        ORG + "usage-logs/<int:pk>/tenants-replay/",
        views.UsageLogTenantsReplayView.as_view(),
        name="usage-log-tenants-replay",
    ),
    path(ORG + "usage-logs/<int:pk>/tenants.json", views.UsageLogTenantsPlanView.as_view(), name="usage-log-tenants"),
    path(ORG + "prices/", views.PriceListView.as_view(), name="prices"),
    path(ORG + "prices/<int:pk>/edit/", views.PriceEditView.as_view(), name="price-edit"),
]
