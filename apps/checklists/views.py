import json
import re

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView, View

from apps.checklists import services
from apps.checklists.forms import AnswerForm, WaiverRequestForm
from apps.checklists.models import Status
from apps.checklists.selectors import checklist_list, response_list, template_list, waiver_list
from apps.core.errors import ApplicationError
from apps.orgs.mixins import ActionView, OrgMixin

# Where a checklist page opens an item: the ones still to do. Answered items start collapsed.
OPEN_STATUSES = (Status.PENDING, Status.FAIL)


class ChecklistMixin(OrgMixin):
    def get_checklist(self):
        return get_object_or_404(checklist_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


class ChecklistDetailView(ChecklistMixin, TemplateView):
    """The items with their answers. `?open=1` lists only the items still to do (pending or
    failing); answered items are collapsed. A refused answer or waiver request renders this page
    again with the form as it was sent (`bound_forms`), so nothing typed is lost."""

    template_name = "checklists/checklist_detail.html"

    def get_context_data(self, bound_forms: dict | None = None, **kwargs):
        checklist = kwargs.pop("checklist", None) or self.get_checklist()
        bound_forms = bound_forms or {}
        today = timezone.localdate()
        max_upload_mb = settings.READINESS_EVIDENCE_MAX_BYTES // 1_000_000
        responses = list(
            services.current_responses(checklist).prefetch_related(
                "waivers__requested_by", "waivers__decided_by", "waivers__revoked_by"
            )
        )
        open_only = self.request.GET.get("open") == "1"
        open_count = sum(1 for r in responses if r.status in OPEN_STATUSES)
        if open_only:
            # An item whose form came back refused stays listed whatever its status.
            responses = [r for r in responses if r.status in OPEN_STATUSES or r.pk in bound_forms]
        # Approve/Reject show only to someone the service would let decide (never the requester).
        user_id = getattr(self.access.user, "pk", None)
        functions = services.member_functions(self.access, self.org.pk) if self.access.can_write(self.org.pk) else ()
        for r in responses:
            r.waiver_rows = [(w, w.state_on(today)) for w in r.waivers.all()]
            r.open_waiver = any(state in ("requested", "approved") for _, state in r.waiver_rows)
            for w, state in r.waiver_rows:
                refusal = services.waiver_decide_refusal(w, user_id=user_id, functions=functions)
                w.can_decide = bool(functions) and state == "requested" and refusal is None
                w.can_revoke = (
                    self.access.can_write(self.org.pk)
                    and state in ("requested", "approved")
                    and services.waiver_revoke_refusal(w, user_id=user_id, functions=functions) is None
                )
            forms = bound_forms.get(r.pk, {})
            r.answer_form = forms.get("answer") or AnswerForm(response=r, max_upload_mb=max_upload_mb)
            r.waiver_form = forms.get("waiver") or WaiverRequestForm(response=r)
            r.answer_refused = "answer" in forms
            r.waiver_refused = "waiver" in forms
            r.expanded = r.status in OPEN_STATUSES or bool(forms)
        latest = services.latest_version(checklist.template)
        upgrade = (
            services.template_diff(checklist.template, latest) if latest.version > checklist.template.version else None
        )
        return super().get_context_data(
            checklist=checklist,
            project=checklist.project,
            responses=responses,
            latest=latest,
            upgrade=upgrade,
            today=today,
            open_only=open_only,
            open_count=open_count,
            **kwargs,
        )


class ChecklistUpgradeView(ChecklistMixin, ActionView):
    def act(self):
        checklist = self.get_checklist()
        latest = services.latest_version(checklist.template)
        changes = services.checklist_upgrade(access=self.access, checklist=checklist, template=latest)
        counts = ", ".join(f"{len(v)} {k}" for k, v in changes.items() if v)
        return f"Upgraded to version {latest.version}: {counts}."

    def back_url(self):
        return reverse("checklist-detail", args=[self.org.slug, self.get_checklist().pk])


class ResponseMixin(OrgMixin):
    def get_response(self):
        return get_object_or_404(response_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def back_url(self):
        response = self.get_response()
        url = reverse("checklist-detail", args=[self.org.slug, response.checklist_id])
        # The list the person was working in ("open items only") is where they return.
        query = "?open=1" if self.request.GET.get("open") == "1" else ""
        return f"{url}{query}#item-{response.item.key}"


def _refusal_on(form, exc: ApplicationError) -> None:
    """The service's sentence on top of the form, and each field's own words beside that field."""
    form.add_error(None, exc.message)
    for field, errors in (exc.detail or {}).items():
        if field in form.fields:
            for message in errors if isinstance(errors, list) else [errors]:
                form.add_error(field, str(message))


def _item_saved(request, response, text: str) -> None:
    # Tagged so the page shows it at the item the redirect scrolls to, not at the top out of view.
    messages.success(request, text, extra_tags=f"at-item item-{response.pk}")


class ItemFormView(ResponseMixin, ChecklistDetailView):
    """A POST of one item's form. Saved: back to the item, the message beside it. Refused: the
    checklist page again (400) with the form as sent and the refusal at its fields."""

    write_required = True
    http_method_names = ["post"]
    form_name = ""

    def make_form(self, response):  # pragma: no cover - each form overrides it
        raise NotImplementedError

    def save(self, response, data: dict) -> str:  # pragma: no cover - each form overrides it
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        response = self.get_response()  # another org's item is a 404 before anything else
        form = self.make_form(response)
        if form.is_valid():
            try:
                _item_saved(request, response, self.save(response, form.cleaned_data))
                return redirect(self.back_url())
            except ApplicationError as exc:
                if exc.status == 404:
                    raise Http404(exc.message) from None
                _refusal_on(form, exc)
        context = self.get_context_data(checklist=response.checklist, bound_forms={response.pk: {self.form_name: form}})
        return render(request, self.template_name, context, status=400)


class ResponseAnswerView(ItemFormView):
    form_name = "answer"

    def make_form(self, response):
        return AnswerForm(
            self.request.POST,
            self.request.FILES,
            response=response,
            max_upload_mb=settings.READINESS_EVIDENCE_MAX_BYTES // 1_000_000,
        )

    def save(self, response, data: dict) -> str:
        response = services.response_answer(
            access=self.access,
            response=response,
            status=data["status"],
            na_reason=data["na_reason"],
            evidence_text=data["evidence_text"],
            evidence_url=data["evidence_url"],
            evidence_file=data["evidence_file"],
        )
        return f"Saved: “{response.item.title}” is now {response.get_status_display().lower()}."


class ResponseEvidenceView(ResponseMixin, View):
    """The attached file, only to members of the org (never served from a public media URL)."""

    def get(self, request, *args, **kwargs):
        response = self.get_response()
        if not response.evidence_file:
            raise Http404("No file attached.")
        name = response.evidence_file.name.rsplit("/", 1)[-1]
        return FileResponse(response.evidence_file.open("rb"), as_attachment=True, filename=name)


class WaiverRequestView(ItemFormView):
    form_name = "waiver"

    def make_form(self, response):
        return WaiverRequestForm(self.request.POST, response=response)

    def save(self, response, data: dict) -> str:
        services.waiver_request(
            access=self.access,
            response=response,
            reason=data["reason"],
            risk_level=data["risk_level"],
            expires_on=data["expires_on"],
        )
        return "Waiver requested; someone else holding the item's function must approve it."


class WaiverMixin(OrgMixin):
    def get_waiver(self):
        return get_object_or_404(waiver_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def message_tags(self) -> str:
        return f"at-item item-{self.get_waiver().response_id}"

    def back_url(self):
        waiver = self.get_waiver()
        url = reverse("checklist-detail", args=[self.org.slug, waiver.response.checklist_id])
        return f"{url}#item-{waiver.response.item.key}"


class WaiverDecideView(WaiverMixin, ActionView):
    def act(self):
        approve = self.request.POST.get("decision") == "approve"
        services.waiver_decide(
            access=self.access, waiver=self.get_waiver(), approve=approve, note=self.request.POST.get("note", "")
        )
        return "Waiver approved." if approve else "Waiver rejected."


class WaiverRevokeView(WaiverMixin, ActionView):
    def act(self):
        services.waiver_revoke(access=self.access, waiver=self.get_waiver(), reason=self.request.POST.get("reason", ""))
        return "Waiver revoked."


# --- templates ---------------------------------------------------------------------------------


class TemplateListView(OrgMixin, TemplateView):
    template_name = "checklists/template_list.html"

    def get_context_data(self, **kwargs):
        templates = template_list(access=self.access, org_id=self.org.pk).prefetch_related("items")
        return super().get_context_data(templates=templates, **kwargs)


ITEM_PLACE = re.compile(r"^items\[(\d+)\](.*)$")
PLACES = {"items": "Items", "name": "Name", "key": "Key", "category": "Category", "change_note": "Change note"}


def _place(key: str) -> str:
    """Where a refusal points, in words: "items[2] (x.pii)" is "Item 3 (x.pii)", "name" is "Name"."""
    if match := ITEM_PLACE.match(key):
        return f"Item {int(match[1]) + 1}{match[2]}"
    return PLACES.get(key, key.replace("_", " ").capitalize())


class TemplateMixin(OrgMixin):
    def get_template_obj(self):
        return get_object_or_404(template_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


class TemplateDetailView(TemplateMixin, TemplateView):
    template_name = "checklists/template_detail.html"

    def get_context_data(self, **kwargs):
        template = self.get_template_obj()
        previous = (
            template_list(access=self.access, org_id=self.org.pk)
            .filter(key=template.key, version__lt=template.version)
            .order_by("-version")
            .first()
        )
        changes = services.template_diff(previous, template) if previous else None
        return super().get_context_data(template=template, previous=previous, changes=changes, **kwargs)


class TemplateNewVersionView(TemplateMixin, TemplateView):
    """Edit a template as JSON (its items); saving makes the next version, the old one stays."""

    template_name = "checklists/template_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.write_required = True
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        template = self.get_template_obj()
        items = [{f: getattr(i, f) for f in services.ITEM_FIELDS} for i in template.items.all()]
        kwargs.setdefault("items_json", json.dumps(items, indent=2, ensure_ascii=False))
        kwargs.setdefault("name", template.name)
        kwargs.setdefault("key", template.key)
        kwargs.setdefault("category", template.category)
        return super().get_context_data(template=template, **kwargs)

    def post(self, request, *args, **kwargs):
        template = self.get_template_obj()
        raw = request.POST.get("items", "")
        try:
            try:
                items = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ApplicationError(f"The items are not valid JSON: {exc}") from None
            # The same key saves the next version; another key starts a new template (the org's own copy).
            new = services.template_save_version(
                access=self.access,
                organization=self.org,
                key=request.POST.get("key") or template.key,
                name=request.POST.get("name", ""),
                category=request.POST.get("category") or template.category,
                items=items,
                change_note=request.POST.get("change_note", ""),
            )
        except ApplicationError as exc:
            details = [f"{_place(k)}: {' '.join(v) if isinstance(v, list) else v}" for k, v in exc.detail.items()]
            context = self.get_context_data(
                items_json=raw,
                name=request.POST.get("name", ""),
                error=exc.message,
                key=request.POST.get("key", ""),
                category=request.POST.get("category", ""),
                error_details=details,
            )
            return self.render_to_response(context, status=400)
        messages.success(request, f"{new} saved. Checklists on older versions can now be upgraded.")
        return redirect("template-detail", org_slug=self.org.slug, pk=new.pk)
