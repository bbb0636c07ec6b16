from django.urls import path

from apps.reports import queue_views, views

ORG = "o/<slug:org_slug>/"
PROJECT = ORG + "projects/<slug:slug>/"
urlpatterns = [
    path("queue/", queue_views.QueueView.as_view(), name="queue"),
    path(ORG, views.DashboardView.as_view(), name="dashboard"),
    path(PROJECT + "readiness/", views.ReadinessView.as_view(), name="project-readiness"),
    path(PROJECT + "checklists/add/", views.ChecklistAddView.as_view(), name="checklist-add"),
    path(PROJECT + "reports/new/", views.ReportCreateView.as_view(), name="report-create"),
    path(ORG + "reports/<int:pk>/", views.ReportDetailView.as_view(), name="report-detail"),
    path(ORG + "reports/<int:pk>/json/", views.ReportJsonView.as_view(), name="report-json"),
]
