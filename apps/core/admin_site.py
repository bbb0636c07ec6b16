from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class SuperuserAdminSite(admin.AdminSite):
    """The admin sees every tenant's rows, so only superusers get in (staff is not enough)."""

    site_header = "readiness administration"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser


class SuperuserAdminConfig(AdminConfig):
    default_site = "apps.core.admin_site.SuperuserAdminSite"
