"""Templates (shipped and versioned), checklists on projects, each evidence kind, automatic items."""

import json

import pytest

from apps.checklists import defaults
from apps.checklists import services as checklists
from apps.checklists.models import Checklist, ChecklistTemplate, ItemResponse, Status
from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.orgs.access import Access
from apps.orgs.models import ApiToken
from apps.probes import services as probes
from apps.projects import services as project_services
from tests.conftest import api_client_for
from tests.readiness_helpers import decided, run_until_evidence


def template(org, key="security", version=None):
    qs = ChecklistTemplate.objects.filter(organization=org, key=key)
    return qs.get(version=version) if version else qs.order_by("-version").first()


@pytest.fixture
def security(world):
    checklists.ensure_shipped_templates(world.org)
    return checklists.checklist_add(
        access=world.access(world.owner), project=world.project, template=template(world.org)
    )


def response(checklist, key):
    return checklists.current_responses(checklist).get(item__key=key)


def token_access(world, tokens, scope="read_write"):
    lookup = tokens[scope].split("_")[1]
    return Access.for_token(ApiToken.objects.get(lookup_id=lookup))


# --- templates -----------------------------------------------------------------------------------


def test_shipped_templates_load_once_per_org_with_every_item_when_the_org_is_created(world):
    # Loaded by organization_create itself (a signal), never by a page that reads the list.
    loaded = ChecklistTemplate.objects.filter(organization=world.org)
    assert sorted(loaded.values_list("key", flat=True)) == sorted(defaults.TEMPLATES)
    checklists.ensure_shipped_templates(world.org)  # idempotent, as `migrate` calls it for every org
    assert loaded.count() == len(defaults.TEMPLATES)
    for t in loaded:
        assert t.version == 1 and t.shipped
        assert [i.key for i in t.items.all()] == [i["key"] for i in defaults.TEMPLATES[t.key]["items"]]
    other = ChecklistTemplate.objects.filter(organization=world.other_org)
    assert set(other.values_list("key", flat=True)) == set(defaults.TEMPLATES)
    assert not set(other.values_list("pk", flat=True)) & set(loaded.values_list("pk", flat=True))


def _items_of(t):
    return [{f: getattr(i, f) for f in checklists.ITEM_FIELDS} for i in t.items.all()]


def test_a_new_version_keeps_the_old_and_reports_what_changed(world, security):
    v1 = template(world.org)
    items = _items_of(v1)
    items[0]["guidance"] += " Also test multilingual payloads."  # reworded: wording only
    items[1]["severity"] = "major"  # changed: material
    removed = items.pop(2)["key"]
    items.append({"key": "sec.new", "title": "New item", "severity": "minor", "function": "security"})
    v2 = checklists.template_save_version(
        access=world.access(world.owner),
        organization=world.org,
        key=v1.key,
        name=v1.name,
        category=v1.category,
        items=items,
        change_note="review",
    )
    assert (v2.version, v1.items.count()) == (2, len(defaults.SECURITY))  # v1 untouched
    diff = checklists.template_diff(v1, v2)
    assert [c["key"] for c in diff["reworded"]] == [items[0]["key"]]
    assert diff["changed"] == [{"key": items[1]["key"], "title": items[1]["title"], "fields": ["severity"]}]
    assert [c["key"] for c in diff["removed"]] == [removed]
    assert [c["key"] for c in diff["added"]] == ["sec.new"]


def test_a_member_cannot_make_a_blocker_disappear_and_a_removal_shows_in_the_audit_and_report(world, security):
    """What must survive: a failing blocker's reason. A member without the blocker's function can
    neither publish a version that drops or downgrades it nor upgrade to one; an admin can, and
    the audit log and the next report say which blocker went, to what, and who did it."""
    from apps.reports.services import report_create

    v1 = template(world.org)
    member = world.access(world.member)  # engineering, not security
    blocker = next(i for i in v1.items.all() if i.severity == "blocker" and i.function == "security")
    checklists.response_answer(
        access=world.access(world.owner),
        response=response(security, blocker.key),
        status="fail",
        evidence_text="prompts logged unredacted",
    )
    items = [i for i in _items_of(v1) if i["key"] != blocker.key]
    with pytest.raises(ApplicationError) as info:
        checklists.template_save_version(
            access=member, organization=world.org, key=v1.key, name=v1.name, category=v1.category, items=items
        )
    assert info.value.status == 403 and blocker.key in info.value.message
    assert ChecklistTemplate.objects.filter(organization=world.org, key=v1.key).count() == 1
    # Downgrading is removing too.
    downgraded = [{**i, "severity": "minor"} if i["key"] == blocker.key else i for i in _items_of(v1)]
    with pytest.raises(ApplicationError):
        checklists.template_save_version(
            access=member, organization=world.org, key=v1.key, name=v1.name, category=v1.category, items=downgraded
        )
    v2 = checklists.template_save_version(
        access=world.access(world.owner),
        organization=world.org,
        key=v1.key,
        name=v1.name,
        category=v1.category,
        items=items,
    )
    published = AuditEvent.objects.get(action="template.version", object_id=str(v2.pk))
    assert published.changes["blockers_removed"] == [None, [blocker.key]]
    with pytest.raises(ApplicationError) as info:
        checklists.checklist_upgrade(access=member, checklist=security, template=v2)
    assert info.value.status == 403
    security.refresh_from_db()
    assert security.template == v1
    checklists.checklist_upgrade(access=world.access(world.owner), checklist=security, template=v2)
    snap = report_create(access=world.access(world.owner), project=world.project).snapshot
    removed = next(c for c in snap["categories"] if c["checklist_id"] == security.pk)["blockers_removed"]
    assert [(r["key"], r["now"], r["by"]) for r in removed] == [(blocker.key, "removed", "owner")]


@pytest.mark.parametrize(
    "items, field",
    [
        ([], "items"),
        ([{"key": "a", "title": "A", "severity": "urgent", "function": "security"}], "severity"),
        ([{"key": "a", "title": "A", "severity": "minor", "function": "marketing"}], "function"),
        (
            [{"key": "a", "title": "A", "severity": "minor", "function": "security", "evidence_kind": "automatic"}],
            "rule",
        ),
        (
            [
                {
                    "key": "a",
                    "title": "A",
                    "severity": "minor",
                    "function": "security",
                    "evidence_kind": "automatic",
                    "rule": {"metric": "vibes", "op": "<", "value": 1},
                }
            ],
            "unknown metric",
        ),
        ([{"key": "a", "title": "A", "severity": "minor", "function": "security"}] * 2, "used twice"),
        ([{"key": "a", "title": "A", "severity": "minor", "function": "security", "colour": "red"}], "Unknown field"),
    ],
)
def test_invalid_template_items_are_refused_with_the_reason_and_nothing_is_saved(world, items, field):
    before = ChecklistTemplate.objects.count()
    with pytest.raises(ApplicationError) as exc:
        checklists.template_save_version(
            access=world.access(world.owner),
            organization=world.org,
            key="custom",
            name="Custom",
            category="security",
            items=items,
        )
    assert field in str(exc.value.detail) or field in exc.value.message
    assert ChecklistTemplate.objects.count() == before


def test_upgrade_keeps_answers_of_unchanged_and_reworded_items_and_resets_changed_ones(world, security):
    owner = world.access(world.owner)
    v1 = template(world.org)
    keys = [i.key for i in v1.items.all()]
    for key in keys[:3]:
        checklists.response_answer(
            access=owner, response=response(security, key), status="pass", evidence_text=f"evidence for {key}"
        )
    items = _items_of(v1)
    items[0]["title"] += " (reworded)"
    items[1]["rule"], items[1]["evidence_kind"] = None, "external"  # changed kind
    items = [i for i in items if i["key"] != keys[2]]
    v2 = checklists.template_save_version(
        access=owner, organization=world.org, key=v1.key, name=v1.name, category=v1.category, items=items
    )
    changes = checklists.checklist_upgrade(access=owner, checklist=security, template=v2)
    assert [c["key"] for c in changes["removed"]] == [keys[2]]
    security.refresh_from_db()
    assert security.template == v2
    assert response(security, keys[0]).status == Status.PASS  # kept
    assert response(security, keys[0]).evidence_text == f"evidence for {keys[0]}"
    assert response(security, keys[1]).status == Status.PENDING  # changed: answer again
    # Nothing is lost: the old answers stay, attached to v1's items.
    old = ItemResponse.objects.get(checklist=security, item__template=v1, item__key=keys[1])
    assert old.status == Status.PASS
    assert ItemResponse.objects.filter(checklist=security, item__template=v1, item__key=keys[2]).exists()
    assert AuditEvent.objects.filter(action="checklist.upgrade", object_id=str(security.pk)).exists()
    with pytest.raises(ApplicationError):
        checklists.checklist_upgrade(access=owner, checklist=security, template=v1)  # no downgrade


def test_a_template_is_added_once_per_project_and_only_from_its_own_org(world, security):
    with pytest.raises(ApplicationError) as exc:
        checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template(world.org))
    assert exc.value.code == "duplicate"
    checklists.ensure_shipped_templates(world.other_org)
    with pytest.raises(ApplicationError) as exc:
        checklists.checklist_add(
            access=world.access(world.owner), project=world.project, template=template(world.other_org, "cost")
        )
    assert exc.value.status == 404
    assert Checklist.objects.filter(project=world.project).count() == 1


# --- evidence kinds --------------------------------------------------------------------------------


def test_manual_items_need_a_person_and_evidence_for_a_pass(world, tokens, security):
    r = response(security, "sec.sensitive-data")
    with pytest.raises(ApplicationError) as exc:
        checklists.response_answer(access=world.access(world.member), response=r, status="pass")
    assert "evidence" in exc.value.message
    with pytest.raises(ApplicationError) as exc:
        checklists.response_answer(access=token_access(world, tokens), response=r, status="pass", evidence_text="x")
    assert exc.value.status == 403
    with pytest.raises(ApplicationError) as exc:
        checklists.response_answer(access=world.access(world.member), response=r, status="not_applicable")
    assert "na_reason" in exc.value.detail
    r.refresh_from_db()
    assert r.status == Status.PENDING  # every refusal left it as it was
    saved = checklists.response_answer(
        access=world.access(world.member), response=r, status="pass", evidence_url="https://wiki.example/redaction"
    )
    assert (saved.status, saved.answered_by, saved.source) == ("pass", world.member, "manual")
    event = AuditEvent.objects.filter(action="checklist.answer", object_id=str(r.pk)).get()
    assert event.changes["status"] == ["pending", "pass"]


def test_external_items_are_set_over_the_api_by_another_systems_token(world, tokens, security):
    r = response(security, "sec.prompt-injection")
    client = api_client_for(token=tokens["read_write"])
    url = f"/api/v1/checklist-responses/{r.pk}/answer/"
    body = {"status": "pass", "evidence_url": "https://ci.example/redteam/812", "evidence_text": "0/250 succeeded"}
    reply = client.post(url, body, format="json")
    assert reply.status_code == 200, reply.json()
    assert reply.json()["source"] == "external" and reply.json()["answered_by"] == "token:ci-rw"
    assert api_client_for(token=tokens["read"]).post(url, body, format="json").status_code == 403
    bad = client.post(url, {"status": "great"}, format="json")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["detail"]
    bad = client.post(url, {"status": "pass", "evidence_url": "not a url"}, format="json")
    assert bad.status_code == 400 and "evidence_url" in bad.json()["error"]["detail"]
    r.refresh_from_db()
    assert r.evidence_url == "https://ci.example/redteam/812"  # the bad calls lost nothing


def test_automatic_items_refuse_a_manual_answer(world):
    checklists.ensure_shipped_templates(world.org)
    rel = checklists.checklist_add(
        access=world.access(world.owner), project=world.project, template=template(world.org, "reliability")
    )
    decided(world.project)
    r = response(rel, "rel.load-test")
    with pytest.raises(ApplicationError) as exc:
        checklists.response_answer(
            access=world.access(world.owner), response=r, status="pass", evidence_text="trust me"
        )
    assert exc.value.code == "automatic_item"
    assert (r.status, r.explanation) == ("pending", "no steady probe result yet")


def test_evidence_file_upload_and_download_stay_inside_the_org(client, world, security, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    r = response(security, "sec.supply-chain")
    client.force_login(world.member)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("sbom.json", b'{"components": []}', content_type="application/json")
    url = f"/o/acme/responses/{r.pk}/answer/"
    reply = client.post(url, {"status": "pass", "evidence_file": upload})
    assert reply.status_code == 302
    r.refresh_from_db()
    assert r.status == "pass" and r.evidence_file.name.endswith(".json")
    download = client.get(f"/o/acme/responses/{r.pk}/evidence/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b'{"components": []}'
    client.force_login(world.outsider)
    assert client.get(f"/o/acme/responses/{r.pk}/evidence/").status_code == 404
    assert client.get(f"/o/globex/responses/{r.pk}/evidence/").status_code == 404


def test_an_oversized_evidence_file_is_refused_and_the_answer_kept(client, world, security, settings, tmp_path):
    settings.MEDIA_ROOT, settings.READINESS_EVIDENCE_MAX_BYTES = tmp_path, 10
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = response(security, "sec.supply-chain")
    client.force_login(world.member)
    reply = client.post(
        f"/o/acme/responses/{r.pk}/answer/",
        {"status": "pass", "evidence_file": SimpleUploadedFile("big.bin", b"x" * 100)},
        follow=True,
    )
    assert "larger than" in reply.content.decode()
    r.refresh_from_db()
    assert r.status == "pending" and not r.evidence_file


def test_evidence_limits_hold_over_the_api_as_on_the_page(world, security, settings, tmp_path):
    """What must survive: the earlier answer. An oversized file, an overlong note or a link that is
    not http(s) sent over the API is refused with the field named, as the page refuses it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT, settings.READINESS_EVIDENCE_MAX_BYTES = tmp_path, 10
    r = response(security, "sec.supply-chain")
    client = api_client_for(world.member)
    url = f"/api/v1/checklist-responses/{r.pk}/answer/"
    big = client.post(url, {"status": "pass", "evidence_file": SimpleUploadedFile("big.bin", b"x" * 100)})
    assert big.status_code == 400 and "evidence_file" in big.json()["error"]["detail"]
    long_note = client.post(url, {"status": "pass", "evidence_text": "x" * 20_001}, format="json")
    assert long_note.status_code == 400 and "evidence_text" in long_note.json()["error"]["detail"]
    with pytest.raises(ApplicationError) as info:  # the service itself, whatever the caller
        checklists.response_answer(
            access=world.access(world.member), response=r, status="pass", evidence_url="javascript:alert(1)"
        )
    assert "evidence_url" in info.value.detail
    r.refresh_from_db()
    assert r.status == "pending" and not r.evidence_file and not r.evidence_text


# --- automatic items from a completed probe run -------------------------------------------------


def test_automatic_items_re_evaluate_when_a_probe_run_completes(world, simulator):
    owner = world.access(world.owner)
    checklists.ensure_shipped_templates(world.org)
    rel = checklists.checklist_add(access=owner, project=world.project, template=template(world.org, "reliability"))
    cost = checklists.checklist_add(access=owner, project=world.project, template=template(world.org, "cost"))
    project_services.project_update(access=owner, project=world.project, monthly_budget_usd=5000, expected_peak_rpm=120)
    endpoint = project_services.endpoint_update(access=owner, endpoint=world.endpoint, base_url=simulator.base_url)
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 3}]},
        max_tokens=8,
        slo={"ttft_p95_ms": 2000},
    )
    run = run_until_evidence(access=owner, plan=plan)  # a saturated client's run leaves the items pending
    assert run.status == "succeeded"
    ttft = run.summary["overall"]["ttft_ms"]["p95"]
    load = response(rel, "rel.load-test")
    assert load.status == ("pass" if ttft <= 800 else "fail")
    assert load.figure == pytest.approx(ttft) and f"{ttft:g}" in load.explanation
    assert load.source == "automatic" and load.evidence_url == f"/o/acme/runs/{run.pk}/"  # the run it read
    budget = response(cost, "cost.within-budget")
    assert budget.status == "pass" and 0 < budget.figure <= 5000
    assert AuditEvent.objects.filter(action="checklist.evaluate", object_id=str(load.pk)).exists()
    # A smaller budget is a project edit: the re-evaluation it queues runs the cost rule again.
    project_services.project_update(access=owner, project=world.project, monthly_budget_usd=1)
    decided(world.project)
    budget.refresh_from_db()
    assert budget.status == "fail" and "must be <= 1" in budget.explanation


def test_the_template_page_saves_a_new_version_or_an_org_copy_and_shows_json_errors(client, world):
    checklists.ensure_shipped_templates(world.org)
    v1 = template(world.org, "cost")
    client.force_login(world.member)
    url = f"/o/acme/templates/{v1.pk}/new-version/"
    form = client.get(url).content.decode()
    assert "cost.within-budget" in form  # the items, as JSON to edit
    bad = client.post(url, {"name": "Cost", "key": "cost", "category": "cost", "items": "[{"})
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    items = _items_of(v1)[:2]
    saved = client.post(url, {"name": "Cost (lean)", "key": "cost", "category": "cost", "items": json.dumps(items)})
    assert saved.status_code == 302
    assert template(world.org, "cost").version == 2 and template(world.org, "cost").items.count() == 2
    copy = client.post(
        url, {"name": "AI Act", "key": "eu-ai-act", "category": "compliance", "items": json.dumps(items)}
    )
    assert copy.status_code == 302
    created = template(world.org, "eu-ai-act")
    assert (created.version, created.category, created.shipped) == (1, "compliance", False)
    detail = client.get(f"/o/acme/templates/{template(world.org, 'cost').pk}/").content.decode()
    assert "6 removed" in detail
