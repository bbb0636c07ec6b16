"""The admin site (its AppConfig is in admin_apps.py: that module is imported while apps load,
before the auth forms this one needs can be)."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from apps.core.login_throttle import ThrottledLoginMixin


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's log-in counts failures with the main log-in page: otherwise it would be the
    place to guess a superuser's password without limit."""


class SuperuserAdminSite(admin.AdminSite):
    """The admin sees every tenant's rows, so only superusers get in (staff is not enough)."""

    site_header = "readiness administration"
    login_form = AdminLoginForm

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser
