from django.urls import path

from apps.reports import queue_views, views

ORG = "o/<slug:org_slug>/"
PROJECT = ORG + "projects/<slug:slug>/"
urlpatterns = [
    path("queue/", queue_views.QueueView.as_view(), name="queue"),
    path(PROJECT + "readiness/", views.ReadinessView.as_view(), name="project-readiness"),
    path(PROJECT + "checklists/add/", views.ChecklistAddView.as_view(), name="checklist-add"),
    path(PROJECT + "signoffs/", views.SignoffDecideView.as_view(), name="signoff-decide"),
    path(PROJECT + "reports/new/", views.ReportCreateView.as_view(), name="report-create"),
    path(ORG + "follow-ups/<int:pk>/done/", views.FollowUpDoneView.as_view(), name="follow-up-done"),
    path(ORG + "reports/<int:pk>/", views.ReportDetailView.as_view(), name="report-detail"),
    path(ORG + "reports/<int:pk>/json/", views.ReportJsonView.as_view(), name="report-json"),
    path(ORG + "signoff-policy/", views.SignoffPolicyView.as_view(), name="signoff-policy"),
]
