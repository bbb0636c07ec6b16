"""The checklist page: refused answers keep what was typed, open-items filter, collapsed answered items."""

import re

import pytest

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from tests.conftest import api_client_for


@pytest.fixture
def checklist(world):
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.filter(organization=world.org, key="security").order_by("-version").first()
    return checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)


def item(checklist, key):
    return checklists.current_responses(checklist).get(item__key=key)


def manual_keys(checklist):
    return list(
        checklists.current_responses(checklist).filter(item__evidence_kind="manual").values_list("item__key", flat=True)
    )


def test_a_refused_answer_keeps_the_note_and_status_and_names_the_link_field_in_words(world, checklist):
    key = manual_keys(checklist)[0]
    r = item(checklist, key)
    client = api_client_for(world.owner)
    reply = client.post(
        f"/o/acme/responses/{r.pk}/answer/",
        {"status": "pass", "evidence_text": "Pen test 2024-11", "evidence_url": "javascript:alert(1)"},
    )
    page = reply.content.decode()
    assert reply.status_code == 400
    assert "Pen test 2024-11</textarea>" in page
    assert '<option value="pass" selected>' in page.split(f'id="id_r{r.pk}_status"')[1].split("</select>")[0]
    assert 'value="javascript:alert(1)"' in page
    field = page.split(f'id="id_r{r.pk}_evidence_url"')[1].split("</div>")[0]
    assert "Give an http(s) URL" in field
    assert "evidence_url" not in re.sub(r"<[^>]*>", "", page)  # words, never the field's key
    assert item(checklist, key).status == "pending"  # nothing saved


def test_a_refused_waiver_request_keeps_the_reason_and_shows_the_date_error_at_the_date(world, checklist):
    r = item(checklist, manual_keys(checklist)[0])
    client = api_client_for(world.owner)
    reply = client.post(
        f"/o/acme/responses/{r.pk}/waivers/", {"reason": "Next release", "risk_level": "high", "expires_on": "someday"}
    )
    page = reply.content.decode()
    assert reply.status_code == 400 and "Next release</textarea>" in page
    assert "Give the expiry as a date" in page.split(f'id="id_r{r.pk}_expires_on"')[1].split("</div>")[0]
    assert not r.waivers.exists()


def test_a_saved_answer_returns_to_its_item_with_the_message_tagged_for_it(world, checklist):
    key = manual_keys(checklist)[0]
    r = item(checklist, key)
    client = api_client_for(world.owner)
    reply = client.post(f"/o/acme/responses/{r.pk}/answer/?open=1", {"status": "pass", "evidence_text": "done"})
    assert reply.status_code == 302 and reply["Location"].endswith(f"?open=1#item-{key}")
    page = client.get(reply["Location"].split("#")[0]).content.decode()
    assert f"at-item item-{r.pk}" in page and "is now pass" in page


def test_open_items_only_lists_pending_and_failing_items_and_answered_items_are_collapsed(world, checklist):
    first, second = manual_keys(checklist)[:2]
    owner = world.access(world.owner)
    checklists.response_answer(access=owner, response=item(checklist, first), status="pass", evidence_text="ok")
    checklists.response_answer(access=owner, response=item(checklist, second), status="fail", evidence_text="no")
    client = api_client_for(world.owner)
    everything = client.get(f"/o/acme/checklists/{checklist.pk}/").content.decode()
    assert f'data-testid="item-{first}">' in everything  # answered: no "open" attribute
    assert f'data-testid="item-{second}" open>' in everything
    open_only = client.get(f"/o/acme/checklists/{checklist.pk}/?open=1").content.decode()
    assert f'data-testid="item-{first}"' not in open_only and f'data-testid="item-{second}"' in open_only
    total = checklists.current_responses(checklist).count()
    assert f"Open items only ({total - 1})" in everything


def test_a_viewer_sees_no_answer_form_and_cannot_post_one(world, checklist):
    r = item(checklist, manual_keys(checklist)[0])
    client = api_client_for(world.viewer)
    assert 'data-testid="answer-form"' not in client.get(f"/o/acme/checklists/{checklist.pk}/").content.decode()
    reply = client.post(f"/o/acme/responses/{r.pk}/answer/", {"status": "fail", "evidence_text": "x"})
    assert reply.status_code == 403 and item(checklist, r.item.key).status == "pending"


def test_an_outsider_gets_404_on_answering_and_waiving_another_orgs_item(world, checklist):
    r = item(checklist, manual_keys(checklist)[0])
    client = api_client_for(world.outsider)
    assert client.post(f"/o/acme/responses/{r.pk}/answer/", {"status": "fail"}).status_code == 404
    assert client.post(f"/o/globex/responses/{r.pk}/answer/", {"status": "fail"}).status_code == 404
    reply = client.post(
        f"/o/globex/responses/{r.pk}/waivers/", {"reason": "x", "risk_level": "low", "expires_on": "2099-01-01"}
    )
    assert reply.status_code == 404 and item(checklist, r.item.key).status == "pending"


def test_a_waiver_decision_is_announced_beside_its_item(world, checklist):
    from datetime import timedelta

    from django.utils import timezone

    r = item(checklist, manual_keys(checklist)[0])
    expires_on = timezone.localdate() + timedelta(days=30)
    waiver = checklists.waiver_request(
        access=world.access(world.owner), response=r, reason="next release", risk_level="low", expires_on=expires_on
    )
    client = api_client_for(world.member)
    reply = client.post(f"/o/acme/waivers/{waiver.pk}/decide/", {"decision": "reject", "note": ""})
    assert reply.status_code == 302 and reply["Location"].endswith(f"#item-{r.item.key}")
    page = client.get(reply["Location"].split("#")[0]).content.decode()
    assert f'class="msg at-item item-{r.pk} error"' in page
