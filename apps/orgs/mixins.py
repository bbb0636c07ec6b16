from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.views.generic import View

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
        if request.session.get(CURRENT_ORG_SESSION_KEY) != self.org.slug:
            # Only on a switch: assigning the same value would rewrite the session row on every read.
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
    """Show a service's refusal on the form: field errors where it names fields, and at the top the
    message with the words of any detail the form has no field for (never the detail's key)."""
    placed, elsewhere = False, []
    for field, errors in (exc.detail or {}).items():
        messages_ = [str(m) for m in (errors if isinstance(errors, list) else [errors])]
        if field in form.fields:
            for message in messages_:
                form.add_error(field, message)
            placed = True
        else:
            elsewhere.extend(messages_)
    if not placed or elsewhere:
        form.add_error(None, " ".join([exc.message, *elsewhere]))


class ActionView(OrgMixin, View):
    """A POST-only page action: run `act()` (a service call returning a success message), show a
    refusal as an error message, and go back to `back_url()`. Nothing is lost on a refusal: the
    service raised before changing anything."""

    write_required = True
    http_method_names = ["post"]

    def act(self) -> str:  # pragma: no cover - each action overrides it
        raise NotImplementedError

    def back_url(self) -> str:  # pragma: no cover - looks the target object up (404 outside the org)
        raise NotImplementedError

    def message_tags(self) -> str:
        """Extra tags of the message: "at-item item-<pk>" shows it beside that checklist item."""
        return ""

    def post(self, request, *args, **kwargs):
        self.back_url()  # resolves the target object first: another org's object is a 404, not a message
        try:
            messages.success(request, self.act(), extra_tags=self.message_tags())
        except ApplicationError as exc:
            # The detail's own words, never its keys: "evidence_url: …" means nothing to a person.
            details = " ".join(
                " ".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs)
                for msgs in (exc.detail or {}).values()
            )
            if exc.status == 404:
                raise Http404(exc.message) from None
            messages.error(request, f"{exc.message} {details}".strip(), extra_tags=self.message_tags())
        return redirect(self.back_url())
