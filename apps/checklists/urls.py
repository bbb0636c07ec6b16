from django.urls import path

from apps.checklists import policy_views, views

ORG = "o/<slug:org_slug>/"
urlpatterns = [
    path(ORG + "checklists/<int:pk>/", views.ChecklistDetailView.as_view(), name="checklist-detail"),
    path(ORG + "checklists/<int:pk>/upgrade/", views.ChecklistUpgradeView.as_view(), name="checklist-upgrade"),
    path(ORG + "responses/<int:pk>/answer/", views.ResponseAnswerView.as_view(), name="response-answer"),
    path(ORG + "responses/<int:pk>/evidence/", views.ResponseEvidenceView.as_view(), name="response-evidence"),
    path(ORG + "responses/<int:pk>/waivers/", views.WaiverRequestView.as_view(), name="waiver-request"),
    path(ORG + "waivers/<int:pk>/decide/", views.WaiverDecideView.as_view(), name="waiver-decide"),
    path(ORG + "waivers/<int:pk>/revoke/", views.WaiverRevokeView.as_view(), name="waiver-revoke"),
    path(ORG + "readiness-policy/", policy_views.ReadinessPolicyView.as_view(), name="readiness-policy"),
    path(ORG + "templates/", views.TemplateListView.as_view(), name="template-list"),
    path(ORG + "templates/<int:pk>/", views.TemplateDetailView.as_view(), name="template-detail"),
    path(ORG + "templates/<int:pk>/new-version/", views.TemplateNewVersionView.as_view(), name="template-new-version"),
]
