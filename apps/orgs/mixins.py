from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied

from apps.core.errors import ApplicationError
from apps.orgs.access import request_access
from apps.orgs.selectors import organization_get

CURRENT_ORG_SESSION_KEY = "current_org"


class OrgMixin(LoginRequiredMixin):
    """Every HTML page under /o/<org_slug>/ goes through here.

    The organization is looked up among the user's memberships (404 for anyone else);
    views then take rows only from `selector(access=..., org_id=self.org.pk)`.
    """

    write_required = False
    admin_required = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.access = request_access(request)
        self.org = organization_get(access=self.access, slug=kwargs["org_slug"])
        request.session[CURRENT_ORG_SESSION_KEY] = self.org.slug
        if self.write_required and not self.access.can_write(self.org.pk):
            raise PermissionDenied("Your role in this organization is read-only.")
        if self.admin_required and not self.access.can_admin(self.org.pk):
            raise PermissionDenied("Only owners and admins can do this.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            org=self.org,
            can_write=self.access.can_write(self.org.pk),
            can_admin=self.access.can_admin(self.org.pk),
        )
        return context


def form_error_from(form, exc: ApplicationError) -> None:
    """Show a service's refusal on the form: field errors where it names fields, else at the top."""
    placed = False
    for field, messages in (exc.detail or {}).items():
        if field in form.fields:
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(field, str(message))
            placed = True
    if not placed:
        form.add_error(None, exc.message)
