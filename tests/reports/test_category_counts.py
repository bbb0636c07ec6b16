"""The readiness page's counts per checklist: each item counted once, a waived one as waived."""

import re
from datetime import timedelta

from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from tests.readiness_helpers import decided


def test_a_waived_item_is_counted_as_waived_only_and_the_counts_add_up_to_the_items(client, world):
    owner = world.access(world.owner)
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklist = checklists.checklist_add(access=owner, project=world.project, template=template)
    responses = list(checklists.current_responses(checklist))
    waived = next(r for r in responses if r.item.function == "engineering")
    checklists.response_answer(access=owner, response=waived, status="fail", evidence_text="not yet")
    waiver = checklists.waiver_request(
        access=owner,
        response=waived,
        reason="next release",
        risk_level="low",
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    checklists.waiver_decide(access=world.access(world.member), waiver=waiver, approve=True)
    decided(world.project)
    client.force_login(world.viewer)
    page = client.get("/o/acme/projects/support-copilot/readiness/").content.decode()
    row = re.search(r'<table class="table" data-testid="checklists">.*?<tbody>\s*<tr>(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    passed, failed, pending, na, waived_count = (int(c) for c in cells[-5:])
    assert (failed, waived_count) == (0, 1)
    assert passed + failed + pending + na + waived_count == len(responses)
