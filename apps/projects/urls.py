from django.urls import path

from apps.projects import views

urlpatterns = [
    path("o/<slug:org_slug>/projects/new/", views.ProjectCreateView.as_view(), name="project-create"),
    path("o/<slug:org_slug>/projects/<slug:slug>/edit/", views.ProjectEditView.as_view(), name="project-edit"),
    path("o/<slug:org_slug>/projects/<slug:slug>/delete/", views.ProjectDeleteView.as_view(), name="project-delete"),
    path(
        "o/<slug:org_slug>/projects/<slug:slug>/endpoints/new/",
        views.EndpointCreateView.as_view(),
        name="endpoint-create",
    ),
    path("o/<slug:org_slug>/endpoints/<int:pk>/edit/", views.EndpointEditView.as_view(), name="endpoint-edit"),
    path("o/<slug:org_slug>/endpoints/<int:pk>/test/", views.EndpointTestView.as_view(), name="endpoint-test"),
    path("o/<slug:org_slug>/endpoints/<int:pk>/delete/", views.EndpointDeleteView.as_view(), name="endpoint-delete"),
]
