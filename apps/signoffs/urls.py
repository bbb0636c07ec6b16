from django.urls import path

from apps.signoffs import views

ORG = "o/<slug:org_slug>/"
PROJECT = ORG + "projects/<slug:slug>/"
urlpatterns = [
    path(PROJECT + "signoffs/", views.SignoffDecideView.as_view(), name="signoff-decide"),
    path(ORG + "follow-ups/<int:pk>/done/", views.FollowUpDoneView.as_view(), name="follow-up-done"),
    path(ORG + "signoff-policy/", views.SignoffPolicyView.as_view(), name="signoff-policy"),
]
