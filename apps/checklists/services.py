"""Templates, checklists, answers and waivers: every change goes through here and is audited.

After a change that can move a project's decision, `readiness_changed(project)` queues its
re-evaluation (automatic items, stale approvals, the decision and its notifications).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from apps.checklists import defaults, rules
from apps.checklists.models import (
    Checklist,
    ChecklistTemplate,
    EvidenceKind,
    ItemResponse,
    RiskLevel,
    Severity,
    Source,
    Status,
    TemplateItem,
    Waiver,
    WaiverStatus,
)
from apps.core.errors import ApplicationError
from apps.core.events import Event, announce
from apps.core.readiness import readiness_changed
from apps.core.services import audit_record, require_writer
from apps.orgs.access import Access
from apps.orgs.models import Function, Membership, Organization

ITEM_FIELDS = ("key", "title", "guidance", "references", "severity", "function", "evidence_kind", "rule")
MAX_WAIVER_DAYS = 365


def item_path(response: ItemResponse) -> str:
    """The item on its checklist page (the integrations make it an absolute URL)."""
    organization = response.checklist.project.organization
    return reverse("checklist-detail", args=[organization.slug, response.checklist_id]) + f"#item-{response.item.key}"


def _announce_blocker(response: ItemResponse, before: str) -> None:
    """A blocker that starts failing, or passes again after failing, is a finding for the ticketing side."""
    if response.item.severity != Severity.BLOCKER or before == response.status:
        return
    data = {
        "item": response.item.key,
        "title": response.item.title,
        "function": response.item.function,
        "from": before,
        "to": response.status,
        "explanation": response.explanation,
        "url": item_path(response),
    }
    key = f"item:{response.checklist_id}:{response.item.key}"
    if response.status == Status.FAIL:
        announce(Event.BLOCKER_FAILED, project=response.checklist.project, finding_key=key, data=data)
    elif before == Status.FAIL and response.status in (Status.PASS, Status.NOT_APPLICABLE):
        announce(Event.BLOCKER_PASSED, project=response.checklist.project, finding_key=key, data=data)


def _require_person(access: Access, what: str) -> None:
    if access.user is None:
        raise ApplicationError(f"{what} needs a person; API tokens cannot do it.", code="forbidden", status=403)


def member_functions(access: Access, org_id: int) -> frozenset[str]:
    """The functions the person behind `access` holds in the org (none for an org token)."""
    if access.user is None:
        return frozenset()
    rows = Membership.objects.filter(organization_id=org_id, user=access.user).values_list("functions", flat=True)
    return frozenset(f for functions in rows for f in (functions or []))


def holds_function(access: Access, org_id: int, function: str) -> bool:
    return function in member_functions(access, org_id)


# --- templates -------------------------------------------------------------------------------


def ensure_shipped_templates(org: Organization) -> None:
    """Load readiness' default templates into `org` (once per shipped version)."""
    for key, spec in defaults.TEMPLATES.items():
        if ChecklistTemplate.objects.filter(organization=org, key=key, shipped=True, version__gte=defaults.VERSION):
            continue
        with transaction.atomic():
            version = _next_version(org, key)
            template = ChecklistTemplate.objects.create(
                organization=org,
                key=key,
                version=version,
                name=spec["title"],
                category=key,
                shipped=True,
                change_note=f"readiness defaults v{defaults.VERSION}",
            )
            _create_items(template, spec["items"])


def _next_version(org: Organization, key: str) -> int:
    latest = ChecklistTemplate.objects.filter(organization=org, key=key).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def validate_items(items) -> list[dict]:
    """Check a list of item dicts; return them normalised. Errors name the item and the field."""
    if not isinstance(items, list) or not items:
        raise ApplicationError("A template needs at least one item.", detail={"items": ["Give a non-empty list."]})
    errors: dict[str, list[str]] = {}
    seen, clean = set(), []
    for n, raw in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(raw, dict):
            errors[where] = ["Each item is an object."]
            continue
        unknown = set(raw) - set(ITEM_FIELDS)
        item = {f: raw.get(f) for f in ITEM_FIELDS}
        item["guidance"] = item["guidance"] or ""
        item["references"] = item["references"] or []
        item["evidence_kind"] = item["evidence_kind"] or EvidenceKind.MANUAL
        problems = [f"Unknown field {u!r}." for u in sorted(unknown)]
        if not item["key"] or not isinstance(item["key"], str):
            problems.append("key is required.")
        elif item["key"] in seen:
            problems.append(f"key {item['key']!r} is used twice.")
        seen.add(item["key"])
        if not item["title"]:
            problems.append("title is required.")
        if item["severity"] not in Severity.values:
            problems.append(f"severity must be one of {', '.join(Severity.values)}.")
        if item["function"] not in Function.values:
            problems.append(f"function must be one of {', '.join(Function.values)}.")
        if item["evidence_kind"] not in EvidenceKind.values:
            problems.append(f"evidence_kind must be one of {', '.join(EvidenceKind.values)}.")
        if not isinstance(item["references"], list):
            problems.append("references is a list of strings.")
        if item["evidence_kind"] == EvidenceKind.AUTOMATIC:
            try:
                rules.validate(item["rule"])
            except ValueError as exc:
                problems.append(f"rule: {exc}")
        elif item["rule"] is not None:
            problems.append("only automatic items have a rule.")
        if problems:
            errors[f"{where} ({item['key'] or '?'})"] = problems
        clean.append(item)
    if errors:
        raise ApplicationError("The template's items are invalid.", detail=errors)
    return clean


def _create_items(template: ChecklistTemplate, items: list[dict]) -> None:
    TemplateItem.objects.bulk_create(
        TemplateItem(template=template, position=n, **{f: i[f] for f in ITEM_FIELDS}) for n, i in enumerate(items)
    )


@transaction.atomic
def template_save_version(
    *, access: Access, organization: Organization, key: str, name: str, category: str, items, change_note: str = ""
) -> ChecklistTemplate:
    """A new template (version 1) or the next version of `key` in this org. Versions are immutable."""
    require_writer(access, organization.pk)
    _require_person(access, "Editing a template")
    from django.utils.text import slugify

    key, category = slugify(key or name)[:60], slugify(category)[:40]
    if not key or not category or not (name or "").strip():
        raise ApplicationError(
            "A template needs a key, a name and a category.", detail={"name": ["Required."], "category": ["Required."]}
        )
    clean = validate_items(items)
    previous = ChecklistTemplate.objects.filter(organization=organization, key=key).order_by("-version").first()
    weakened = weakened_blockers(
        {i.key: i.material() for i in previous.items.all()} if previous else {}, {i["key"]: i for i in clean}
    )
    _require_blocker_owner(access, organization.pk, weakened, "publish a version that removes or downgrades")
    template = ChecklistTemplate.objects.create(
        organization=organization,
        key=key,
        version=_next_version(organization, key),
        name=name.strip(),
        category=category,
        change_note=change_note[:300],
        created_by=access.user,
    )
    _create_items(template, clean)
    changes = {"version": [None, template.version], "items": [None, len(clean)]}
    if weakened:
        changes["blockers_removed"] = [None, [w["key"] for w in weakened]]
    audit_record(
        access=access, organization_id=organization.pk, action="template.version", obj=template, changes=changes
    )
    return template


def weakened_blockers(before: dict[str, dict], after: dict[str, dict]) -> list[dict]:
    """Blockers of `before` that `after` drops or downgrades: {key, function, now} each. Items are
    key -> fields with at least severity and function."""
    out = []
    for key, item in before.items():
        if item["severity"] != Severity.BLOCKER:
            continue
        now = after.get(key)
        if now is None or now["severity"] != Severity.BLOCKER:
            out.append({"key": key, "function": item["function"], "now": now["severity"] if now else "removed"})
    return out


def _require_blocker_owner(access: Access, org_id: int, weakened: list[dict], what: str) -> None:
    """Removing or downgrading a blocker is for an admin, or for someone holding the function of
    every such blocker: a member cannot make their own failing blockers disappear."""
    if not weakened or access.can_admin(org_id):
        return
    missing = sorted({w["function"] for w in weakened if not holds_function(access, org_id, w["function"])})
    if missing:
        keys = ", ".join(w["key"] for w in weakened)
        raise ApplicationError(
            f"Only an admin or a holder of the {', '.join(missing)} function can {what} blockers ({keys}).",
            code="forbidden",
            status=403,
        )


def template_diff(old: ChecklistTemplate | None, new: ChecklistTemplate) -> dict:
    """What changed between two versions, by item key: added, removed, changed (material fields),
    reworded (title / guidance / references only; answers are kept), unchanged."""
    before = {i.key: i for i in old.items.all()} if old else {}
    after = {i.key: i for i in new.items.all()}
    out = {"added": [], "removed": [], "changed": [], "reworded": [], "unchanged": []}
    for key, item in after.items():
        prev = before.get(key)
        if prev is None:
            out["added"].append({"key": key, "title": item.title})
        elif prev.material() != item.material():
            fields = [f for f in TemplateItem.MATERIAL_FIELDS if getattr(prev, f) != getattr(item, f)]
            out["changed"].append({"key": key, "title": item.title, "fields": fields})
        elif (prev.title, prev.guidance, prev.references) != (item.title, item.guidance, item.references):
            out["reworded"].append({"key": key, "title": item.title})
        else:
            out["unchanged"].append({"key": key, "title": item.title})
    out["removed"] = [{"key": k, "title": i.title} for k, i in before.items() if k not in after]
    return out


def latest_version(template: ChecklistTemplate) -> ChecklistTemplate:
    return (
        ChecklistTemplate.objects.filter(organization_id=template.organization_id, key=template.key)
        .order_by("-version")
        .first()
    )


# --- checklists ------------------------------------------------------------------------------


@transaction.atomic
def checklist_add(*, access: Access, project, template: ChecklistTemplate) -> Checklist:
    require_writer(access, project.organization_id)
    if template.organization_id != project.organization_id:
        raise ApplicationError("Not found.", code="not_found", status=404)
    if Checklist.objects.filter(project=project, template_key=template.key).exists():
        raise ApplicationError(
            f"The project already has the {template.name!r} checklist; upgrade it instead.",
            code="duplicate",
            detail={"template": ["Already on this project."]},
        )
    checklist = Checklist.objects.create(project=project, template=template, template_key=template.key)
    ItemResponse.objects.bulk_create(ItemResponse(checklist=checklist, item=i) for i in template.items.all())
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="checklist.add",
        obj=checklist,
        changes={"template": [None, str(template)]},
    )
    readiness_changed(project)
    return checklist


@transaction.atomic
def checklist_upgrade(*, access: Access, checklist: Checklist, template: ChecklistTemplate) -> dict:
    """Move a checklist to a newer version of its template. Answers of unchanged and reworded
    items move with it; changed and new items start pending; old answers stay in history."""
    project = checklist.project
    require_writer(access, project.organization_id)
    if template.organization_id != project.organization_id or template.key != checklist.template_key:
        raise ApplicationError("That is not a version of this checklist's template.", code="invalid")
    if template.version <= checklist.template.version:
        raise ApplicationError(f"The checklist is already at version {checklist.template.version}.")
    changes = template_diff(checklist.template, template)
    weakened = weakened_blockers(
        {i.key: i.material() for i in checklist.template.items.all()},
        {i.key: i.material() for i in template.items.all()},
    )
    _require_blocker_owner(access, project.organization_id, weakened, "upgrade to a version that removes or downgrades")
    current = {r.item.key: r for r in current_responses(checklist)}
    keep = {c["key"] for c in changes["unchanged"] + changes["reworded"]}
    for item in template.items.all():
        response = current.get(item.key)
        if response is not None and item.key in keep:
            response.item = item
            response.save(update_fields=["item", "updated_at"])
        else:
            ItemResponse.objects.create(checklist=checklist, item=item)
    old = str(checklist.template)
    checklist.template = template
    checklist.save(update_fields=["template", "updated_at"])
    record = {
        "template": [old, str(template)],
        **{k: [None, [c["key"] for c in v]] for k, v in changes.items() if v and k != "unchanged"},
    }
    if weakened:  # in full: the report shows which blockers went away, and to what
        record["blockers_removed"] = [None, weakened]
    changes["blockers_removed"] = weakened
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="checklist.upgrade",
        obj=checklist,
        changes=record,
    )
    readiness_changed(project)
    return changes


def current_responses(checklist: Checklist):
    return checklist.responses.filter(item__template_id=checklist.template_id).select_related("item")


# --- answers ---------------------------------------------------------------------------------

ANSWER_FIELDS = ("status", "na_reason", "evidence_text", "evidence_url", "evidence_file")


@transaction.atomic
def response_answer(
    *,
    access: Access,
    response: ItemResponse,
    status: str,
    na_reason: str = "",
    evidence_text: str = "",
    evidence_url: str = "",
    evidence_file=None,
) -> ItemResponse:
    """Answer a manual item (a person, with evidence for a pass) or an external one (any writer,
    typically another system's token). Automatic items are answered by their rule only."""
    project = response.checklist.project
    require_writer(access, project.organization_id)
    kind = response.item.evidence_kind
    if kind == EvidenceKind.AUTOMATIC:
        raise ApplicationError(
            "This item is decided by its rule over the latest probe and cost results.",
            code="automatic_item",
            status=409,
        )
    if kind == EvidenceKind.MANUAL:
        _require_person(access, "Attesting a manual item")
    if status not in Status.values:
        raise ApplicationError("Unknown status.", detail={"status": [f"One of {', '.join(Status.values)}."]})
    if status == Status.NOT_APPLICABLE and not na_reason.strip():
        raise ApplicationError("Say why the item does not apply.", detail={"na_reason": ["Required for N/A."]})
    evidence_url = _evidence_checked(evidence_text, evidence_url, evidence_file)
    has_evidence = (
        evidence_text.strip() or evidence_url or evidence_file or (response.evidence_file and status == response.status)
    )
    if status == Status.PASS and kind == EvidenceKind.MANUAL and not has_evidence:
        raise ApplicationError(
            "A pass needs evidence: a note, a link or a file.",
            detail={"evidence_text": ["Attach evidence for a pass."]},
        )
    before = {f: str(getattr(response, f) or "") for f in ANSWER_FIELDS}
    status_before = response.status
    response.status, response.na_reason = status, na_reason.strip()[:500]
    response.evidence_text, response.evidence_url = evidence_text.strip(), evidence_url
    if evidence_file:
        response.evidence_file = evidence_file
    response.source = Source.EXTERNAL if kind == EvidenceKind.EXTERNAL else Source.MANUAL
    response.answered_by, response.answered_label, response.answered_at = access.user, access.label, timezone.now()
    response.figure, response.explanation = None, ""
    response.save()
    after = {f: str(getattr(response, f) or "") for f in ANSWER_FIELDS}
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="checklist.answer",
        obj=response,
        changes={f: [before[f], after[f]] for f in ANSWER_FIELDS if before[f] != after[f]},
    )
    _announce_blocker(response, status_before)
    readiness_changed(project)
    return response


EVIDENCE_TEXT_MAX_CHARS = 20_000
EVIDENCE_URL_MAX_CHARS = 500


def _evidence_checked(text: str, url: str, upload) -> str:
    """The limits on evidence, the same for the page and the API: the file's size, the note's
    length, and an http(s) link (rendered as a link: no javascript: or data: URLs). Returns the URL."""
    limit = settings.READINESS_EVIDENCE_MAX_BYTES
    if upload is not None and upload.size > limit:
        raise ApplicationError(
            f"The file is larger than {limit:,} bytes.", detail={"evidence_file": [f"At most {limit:,} bytes."]}
        )
    if len(text) > EVIDENCE_TEXT_MAX_CHARS:
        message = f"At most {EVIDENCE_TEXT_MAX_CHARS:,} characters."
        raise ApplicationError(f"The note is too long. {message}", detail={"evidence_text": [message]})
    url = url.strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            url = ""
        if not url or len(url) > EVIDENCE_URL_MAX_CHARS:
            message = f"Give an http(s) URL of at most {EVIDENCE_URL_MAX_CHARS} characters."
            raise ApplicationError("The evidence link is not a valid http(s) URL.", detail={"evidence_url": [message]})
    return url


def evaluate_automatic(
    project, *, probes: dict[str, rules.ProbeEvidence | None], cost: dict | None
) -> list[ItemResponse]:
    """Re-run every automatic item's rule over the newest run of the kind it reads (`probes`, by
    kind) and the cost projection; save and audit those whose result changed. The item's evidence
    link points at the run its rule read."""
    budget = float(project.monthly_budget_usd) if project.monthly_budget_usd is not None else None
    changed = []
    responses = ItemResponse.objects.filter(
        checklist__project=project, item__evidence_kind=EvidenceKind.AUTOMATIC
    ).select_related("item", "checklist")
    for response in responses:
        if response.item.template_id != response.checklist.template_id:
            continue  # history of an older version
        outcome = rules.evaluate(response.item.rule, probes=probes, cost=cost, budget=budget)
        result = (outcome.status, outcome.figure, outcome.explanation[:300], outcome.url[:EVIDENCE_URL_MAX_CHARS])
        if (response.status, response.figure, response.explanation, response.evidence_url) == result:
            continue
        before = response.status
        response.status, response.figure, response.explanation, response.evidence_url = result
        response.source, response.answered_by, response.answered_label = Source.AUTOMATIC, None, "rule"
        response.answered_at = timezone.now()
        response.save()
        audit_record(
            access=Access.system(),
            organization_id=project.organization_id,
            action="checklist.evaluate",
            obj=response,
            changes={"status": [before, outcome.status], "figure": [None, outcome.explanation]},
        )
        _announce_blocker(response, before)
        changed.append(response)
    return changed


# --- waivers ---------------------------------------------------------------------------------


def _waiver_project(waiver_or_response):
    response = waiver_or_response.response if isinstance(waiver_or_response, Waiver) else waiver_or_response
    return response.checklist.project


@transaction.atomic
def waiver_request(*, access: Access, response: ItemResponse, reason: str, risk_level: str, expires_on: date) -> Waiver:
    project = _waiver_project(response)
    require_writer(access, project.organization_id)
    _require_person(access, "Requesting a waiver")
    today = timezone.localdate()
    errors = {}
    if not (reason or "").strip():
        errors["reason"] = ["Say why the item can be exempted."]
    if risk_level not in RiskLevel.values:
        errors["risk_level"] = [f"One of {', '.join(RiskLevel.values)}."]
    if not isinstance(expires_on, date) or expires_on < today:
        errors["expires_on"] = ["Give a date from today on."]
    elif expires_on > today + timedelta(days=MAX_WAIVER_DAYS):
        errors["expires_on"] = [f"At most {MAX_WAIVER_DAYS} days ahead."]
    if errors:
        raise ApplicationError("The waiver request is incomplete.", detail=errors)
    if response.status in (Status.PASS, Status.NOT_APPLICABLE):
        raise ApplicationError("Only a failing or pending item can be waived.", code="conflict", status=409)
    open_waiver = response.waivers.filter(status__in=[WaiverStatus.REQUESTED, WaiverStatus.APPROVED])
    if any(w.state_on(today) in (WaiverStatus.REQUESTED, WaiverStatus.APPROVED) for w in open_waiver):
        raise ApplicationError("This item already has an open waiver; revoke it first.", code="duplicate", status=409)
    waiver = Waiver.objects.create(
        response=response, reason=reason.strip(), risk_level=risk_level, expires_on=expires_on, requested_by=access.user
    )
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="waiver.request",
        obj=waiver,
        changes={
            "reason": [None, waiver.reason],
            "risk_level": [None, risk_level],
            "expires_on": [None, str(expires_on)],
        },
    )
    return waiver


def waiver_decide_refusal(waiver: Waiver, *, user_id: int, functions) -> ApplicationError | None:
    """Why this person may not decide `waiver`, or None if they may: never its requester
    (separation of duties), only a holder of the item's function. Pages and the "waiting for you"
    queue ask this same question."""
    if waiver.requested_by_id == user_id:
        return ApplicationError("You cannot decide your own waiver request.", code="separation_of_duties", status=403)
    function = waiver.response.item.function
    if function not in functions:
        return ApplicationError(
            f"Only members holding the {function} function can decide this waiver.", code="forbidden", status=403
        )
    return None


@transaction.atomic
def waiver_decide(*, access: Access, waiver: Waiver, approve: bool, note: str = "") -> Waiver:
    """Approve or reject: someone other than the requester, holding the item's function."""
    project = _waiver_project(waiver)
    require_writer(access, project.organization_id)
    _require_person(access, "Deciding a waiver")
    waiver = Waiver.objects.select_for_update().get(pk=waiver.pk)
    if waiver.status != WaiverStatus.REQUESTED:
        raise ApplicationError(f"The waiver is already {waiver.status}.", code="conflict", status=409)
    refusal = waiver_decide_refusal(
        waiver, user_id=access.user.pk, functions=member_functions(access, project.organization_id)
    )
    if refusal is not None:
        raise refusal
    if not approve and not note.strip():
        raise ApplicationError("Say why the waiver is rejected.", detail={"note": ["Required to reject."]})
    waiver.status = WaiverStatus.APPROVED if approve else WaiverStatus.REJECTED
    waiver.decided_by, waiver.decided_at, waiver.decision_note = access.user, timezone.now(), note.strip()[:500]
    waiver.save()
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="waiver.approve" if approve else "waiver.reject",
        obj=waiver,
        changes={"status": [WaiverStatus.REQUESTED, waiver.status]},
    )
    readiness_changed(project)
    return waiver


def waiver_revoke_refusal(waiver: Waiver, *, user_id: int | None, functions) -> ApplicationError | None:
    """Why this person may not revoke `waiver`, or None if they may: its requester, or a holder of
    the item's function. The checklist page asks this same question before showing Revoke."""
    if user_id is not None and waiver.requested_by_id == user_id:
        return None
    if waiver.response.item.function in functions:
        return None
    return ApplicationError(
        "Only the requester or a holder of the item's function can revoke it.", code="forbidden", status=403
    )


@transaction.atomic
def waiver_revoke(*, access: Access, waiver: Waiver, reason: str) -> Waiver:
    """End a requested or approved waiver early: its requester or a holder of the item's function."""
    project = _waiver_project(waiver)
    require_writer(access, project.organization_id)
    _require_person(access, "Revoking a waiver")
    waiver = Waiver.objects.select_for_update().get(pk=waiver.pk)
    if waiver.status not in (WaiverStatus.REQUESTED, WaiverStatus.APPROVED):
        raise ApplicationError(f"The waiver is already {waiver.status}.", code="conflict", status=409)
    refusal = waiver_revoke_refusal(
        waiver, user_id=access.user.pk, functions=member_functions(access, project.organization_id)
    )
    if refusal is not None:
        raise refusal
    if not (reason or "").strip():
        raise ApplicationError("Say why the waiver is revoked.", detail={"reason": ["Required."]})
    before = waiver.status
    waiver.status, waiver.revoked_by, waiver.revoked_at = WaiverStatus.REVOKED, access.user, timezone.now()
    waiver.revoke_reason = reason.strip()[:500]
    waiver.save()
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="waiver.revoke",
        obj=waiver,
        changes={"status": [before, WaiverStatus.REVOKED], "reason": [None, waiver.revoke_reason]},
    )
    readiness_changed(project)
    return waiver
