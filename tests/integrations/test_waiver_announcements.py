"""Waivers expire with the clock alone: beat announces each expiring and each expired one, once."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from apps.checklists import services as checklists
from apps.integrations import services as integrations
from apps.integrations.models import Delivery, Event
from apps.integrations.tasks import waivers_announce_task
from tests.signoffs.test_waivers_and_signoffs import request_waiver, team  # noqa: F401 - `team` is a fixture


def test_an_expiring_then_expired_waiver_is_announced_once_each_to_its_org_only(world, team):  # noqa: F811
    hooks = {"url": "http://127.0.0.1:9/hooks", "events": [Event.WAIVER_EXPIRING, Event.WAIVER_EXPIRED]}
    integrations.connector_create(access=world.access(world.owner), organization=world.org, name="a", **hooks)
    integrations.connector_create(access=world.access(world.outsider), organization=world.other_org, name="b", **hooks)
    waiver = request_waiver(team, days=3)
    checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=True)

    assert waivers_announce_task() == 1
    assert waivers_announce_task() == 0  # once: the second pass finds the first announcement
    expiring = Delivery.objects.get(event=Event.WAIVER_EXPIRING)
    assert expiring.connector.organization == world.org  # never the other organization's connector
    assert expiring.finding_key == f"waiver:{waiver.pk}"
    assert expiring.payload["data"]["expires_on"] == waiver.expires_on.isoformat()

    with time_machine.travel(timezone.now() + timedelta(days=5)):
        assert waivers_announce_task() == 1
        assert waivers_announce_task() == 0
    assert Delivery.objects.filter(event=Event.WAIVER_EXPIRED, finding_key=f"waiver:{waiver.pk}").count() == 1
