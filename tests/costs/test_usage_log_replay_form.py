"""The usage log's replay form keeps what was typed on a refusal and shows the error at its field."""

import re

from apps.probes.models import ProbePlan
from tests.conftest import api_client_for
from tests.costs.test_cost_app import _analysed_log


def field(page: str, name: str) -> str:
    return re.search(rf'<label class="[^"]*" data-field="{name}">.*?</label>', page, re.S).group(0)


def test_a_refused_replay_keeps_the_values_and_shows_the_error_at_the_field(world, settings, tmp_path):
    log = _analysed_log(world, settings, tmp_path)
    reply = api_client_for(world.member).post(
        f"/o/acme/usage-logs/{log.pk}/replay/",
        {"endpoint": world.endpoint.pk, "scale": "0", "seconds_per_minute": "2.5"},
    )
    assert reply.status_code == 400 and not ProbePlan.objects.exists()
    page = reply.content.decode()
    scale = field(page, "scale")
    assert 'class="has-error"' in scale and 'value="0"' in scale and "Must be positive." in scale
    assert 'value="2.5"' in field(page, "seconds_per_minute")
    assert f'<option value="{world.endpoint.pk}" selected>' in field(page, "endpoint")
    assert "seconds_per_minute" not in re.sub(r'(name|data-field|id|for)="[^"]*"', "", page.split("replay-form")[1])


def test_a_word_for_a_number_is_refused_at_its_field(world, settings, tmp_path):
    log = _analysed_log(world, settings, tmp_path)
    reply = api_client_for(world.member).post(
        f"/o/acme/usage-logs/{log.pk}/replay/",
        {"endpoint": world.endpoint.pk, "scale": "lots", "seconds_per_minute": "6"},
    )
    assert reply.status_code == 400 and "Enter a number." in field(reply.content.decode(), "scale")


def test_a_viewer_gets_no_replay_form_and_is_refused_a_replay(world, settings, tmp_path):
    log = _analysed_log(world, settings, tmp_path)
    viewer = api_client_for(world.viewer)
    assert 'data-testid="replay-form"' not in viewer.get(f"/o/acme/usage-logs/{log.pk}/").content.decode()
    reply = viewer.post(f"/o/acme/usage-logs/{log.pk}/replay/", {"endpoint": world.endpoint.pk, "scale": "1"})
    assert reply.status_code == 403 and not ProbePlan.objects.exists()


def test_an_outsider_gets_404_on_the_replay(world, settings, tmp_path):
    log = _analysed_log(world, settings, tmp_path)
    reply = api_client_for(world.outsider).post(f"/o/acme/usage-logs/{log.pk}/replay/", {"scale": "1"})
    assert reply.status_code == 404
