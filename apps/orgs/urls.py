from django.urls import path

from apps.orgs import invitation_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("orgs/new/", views.OrganizationCreateView.as_view(), name="org-create"),
    path("invitations/", invitation_views.InvitationListView.as_view(), name="invitations"),
    path(
        "invitations/<int:pk>/<str:answer>/", invitation_views.InvitationAnswerView.as_view(), name="invitation-answer"
    ),
    path(
        "o/<slug:org_slug>/invitations/<int:pk>/revoke/",
        invitation_views.InvitationRevokeView.as_view(),
        name="invitation-revoke",
    ),
    path("o/<slug:org_slug>/members/", views.MemberListView.as_view(), name="members"),
    path("o/<slug:org_slug>/members/<int:pk>/edit/", views.MemberEditView.as_view(), name="member-edit"),
    path("o/<slug:org_slug>/members/<int:pk>/remove/", views.MemberRemoveView.as_view(), name="member-remove"),
    path("o/<slug:org_slug>/tokens/", views.TokenListView.as_view(), name="tokens"),
    path("o/<slug:org_slug>/tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("o/<slug:org_slug>/my-tokens/", views.PersonalTokenListView.as_view(), name="my-tokens"),
    path(
        "o/<slug:org_slug>/my-tokens/<int:pk>/revoke/", views.PersonalTokenRevokeView.as_view(), name="my-token-revoke"
    ),
    path("o/<slug:org_slug>/audit/", views.AuditLogView.as_view(), name="audit"),
]
