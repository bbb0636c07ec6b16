import json
from datetime import date

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView, View

from apps.checklists import services
from apps.checklists.models import RiskLevel, Status
from apps.checklists.selectors import checklist_list, response_list, template_list, waiver_list
from apps.core.errors import ApplicationError
from apps.orgs.mixins import ActionView, OrgMixin


class ChecklistMixin(OrgMixin):
    def get_checklist(self):
        return get_object_or_404(checklist_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])


class ChecklistDetailView(ChecklistMixin, TemplateView):
    template_name = "checklists/checklist_detail.html"

    def get_context_data(self, **kwargs):
        checklist = self.get_checklist()
        today = timezone.localdate()
        responses = list(
            services.current_responses(checklist).prefetch_related(
                "waivers__requested_by", "waivers__decided_by", "waivers__revoked_by"
            )
        )
        for r in responses:
            r.waiver_rows = [(w, w.state_on(today)) for w in r.waivers.all()]
            r.open_waiver = any(state in ("requested", "approved") for _, state in r.waiver_rows)
        latest = services.latest_version(checklist.template)
        upgrade = (
            services.template_diff(checklist.template, latest) if latest.version > checklist.template.version else None
        )
        return super().get_context_data(
            checklist=checklist, project=checklist.project, responses=responses, latest=latest, upgrade=upgrade,
            statuses=Status.choices, risk_levels=RiskLevel.choices, today=today,
            max_upload_mb=settings.READINESS_EVIDENCE_MAX_BYTES // 1_000_000, **kwargs,
        )  # fmt: skip


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
        return reverse("checklist-detail", args=[self.org.slug, response.checklist_id]) + f"#item-{response.item.key}"


class ResponseAnswerView(ResponseMixin, ActionView):
    def act(self):
        post = self.request.POST
        response = services.response_answer(
            access=self.access, response=self.get_response(), status=post.get("status", ""),
            na_reason=post.get("na_reason", ""), evidence_text=post.get("evidence_text", ""),
            evidence_url=post.get("evidence_url", ""), evidence_file=self.request.FILES.get("evidence_file"),
        )  # fmt: skip
        return f"“{response.item.title}” is now {response.get_status_display().lower()}."


class ResponseEvidenceView(ResponseMixin, View):
    """The attached file, only to members of the org (never served from a public media URL)."""

    def get(self, request, *args, **kwargs):
        response = self.get_response()
        if not response.evidence_file:
            raise Http404("No file attached.")
        name = response.evidence_file.name.rsplit("/", 1)[-1]
        return FileResponse(response.evidence_file.open("rb"), as_attachment=True, filename=name)


class WaiverRequestView(ResponseMixin, ActionView):
    def act(self):
        post = self.request.POST
        try:
            expires_on = date.fromisoformat(post.get("expires_on", ""))
        except ValueError:
            raise ApplicationError("Give the expiry as a date.", detail={"expires_on": ["YYYY-MM-DD."]}) from None
        services.waiver_request(access=self.access, response=self.get_response(), reason=post.get("reason", ""),
                                risk_level=post.get("risk_level", ""), expires_on=expires_on)  # fmt: skip
        return "Waiver requested; someone else holding the item's function must approve it."


class WaiverMixin(OrgMixin):
    def get_waiver(self):
        return get_object_or_404(waiver_list(access=self.access, org_id=self.org.pk), pk=self.kwargs["pk"])

    def back_url(self):
        waiver = self.get_waiver()
        url = reverse("checklist-detail", args=[self.org.slug, waiver.response.checklist_id])
        return f"{url}#item-{waiver.response.item.key}"


class WaiverDecideView(WaiverMixin, ActionView):
    def act(self):
        approve = self.request.POST.get("decision") == "approve"
        services.waiver_decide(access=self.access, waiver=self.get_waiver(), approve=approve,
                               note=self.request.POST.get("note", ""))  # fmt: skip
        return "Waiver approved." if approve else "Waiver rejected."


class WaiverRevokeView(WaiverMixin, ActionView):
    def act(self):
        services.waiver_revoke(access=self.access, waiver=self.get_waiver(), reason=self.request.POST.get("reason", ""))
        return "Waiver revoked."


# --- templates ---------------------------------------------------------------------------------


class TemplateListView(OrgMixin, TemplateView):
    template_name = "checklists/template_list.html"

    def get_context_data(self, **kwargs):
        services.ensure_shipped_templates(self.org)
        templates = template_list(access=self.access, org_id=self.org.pk).prefetch_related("items")
        return super().get_context_data(templates=templates, **kwargs)


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
                access=self.access, organization=self.org, key=request.POST.get("key") or template.key,
                name=request.POST.get("name", ""), category=request.POST.get("category") or template.category,
                items=items, change_note=request.POST.get("change_note", ""),
            )  # fmt: skip
        except ApplicationError as exc:
            details = [f"{k}: {' '.join(v) if isinstance(v, list) else v}" for k, v in exc.detail.items()]
            context = self.get_context_data(items_json=raw, name=request.POST.get("name", ""), error=exc.message,
                                            key=request.POST.get("key", ""), category=request.POST.get("category", ""),
                                            error_details=details)  # fmt: skip
            return self.render_to_response(context, status=400)
        messages.success(request, f"{new} saved. Checklists on older versions can now be upgraded.")
        return redirect("template-detail", org_slug=self.org.slug, pk=new.pk)
