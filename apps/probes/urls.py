from django.urls import path

from apps.probes import views

o = "o/<slug:org_slug>/"
urlpatterns = [
    path(o + "projects/<slug:slug>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path(o + "endpoints/<int:endpoint_pk>/plans/new/", views.PlanCreateView.as_view(), name="plan-create"),
    path(
        o + "endpoints/<int:pk>/compatibility/",
        views.EndpointCompatibilityView.as_view(),
        name="endpoint-compatibility",
    ),
    path(o + "plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan-detail"),
    path(o + "plans/<int:pk>/edit/", views.PlanEditView.as_view(), name="plan-edit"),
    path(o + "plans/<int:pk>/start/", views.PlanStartView.as_view(), name="plan-start"),
    path(o + "plans/<int:pk>/delete/", views.PlanDeleteView.as_view(), name="plan-delete"),
    path(o + "plans/<int:pk>/compare/", views.PlanCompareView.as_view(), name="plan-compare"),
    path(o + "runs/<int:pk>/", views.RunDetailView.as_view(), name="run-detail"),
    path(o + "runs/<int:pk>/progress/", views.RunProgressView.as_view(), name="run-progress"),
    path(o + "runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="run-cancel"),
    path(o + "runs/<int:pk>/summary.json", views.RunSummaryDownloadView.as_view(), name="run-summary-json"),
    path(o + "runs/<int:pk>/requests.csv", views.RunCsvDownloadView.as_view(), name="run-requests-csv"),
    path(o + "runs/<int:pk>/compare/<int:other>/", views.RunCompareView.as_view(), name="run-compare"),
    path(o + "probe-limits/", views.LimitsView.as_view(), name="probe-limits"),
]
