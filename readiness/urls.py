from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("readiness.api_urls", "api"))),
    path("", include("apps.orgs.urls")),
    path("", include("apps.projects.urls")),
    path("", include("apps.probes.urls")),
    path("", include("apps.checklists.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.integrations.urls")),
    path("", include("apps.costs.urls")),
]

# An unmatched /api/ URL answers the API's error shape; other paths keep the HTML page.
handler404 = "apps.core.drf.api_page_not_found"
