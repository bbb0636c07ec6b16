from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core.views import healthz
from apps.orgs.views import LoginView, PasswordResetView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's names (password_change, password_reset_confirm ...): its views redirect by them.
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("account/password-reset/", PasswordResetView.as_view(), name="password_reset"),
    path("account/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "account/password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/password-reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("readiness.api_urls", "api"))),
    path("", include("apps.orgs.urls")),
    path("", include("apps.projects.urls")),
    path("", include("apps.probes.urls")),
    path("", include("apps.checklists.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.signoffs.urls")),
    path("", include("apps.integrations.urls")),
    path("", include("apps.costs.urls")),
]

# An unmatched /api/ URL answers the API's error shape; other paths keep the HTML page.
handler404 = "apps.core.drf.api_page_not_found"
# 403.html is Django's default handler's template; 500 needs ours to draw the navigation when it can.
handler500 = "apps.core.views.server_error"
