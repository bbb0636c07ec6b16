from django.urls import reverse
from rest_framework.settings import api_settings

from tests.conftest import api_client_for


def test_api_requests_beyond_the_rate_limit_get_429_with_retry_after(world, tokens, monkeypatch):
    from apps.orgs.throttling import PrincipalRateThrottle

    monkeypatch.setattr(
        PrincipalRateThrottle, "THROTTLE_RATES", {**api_settings.DEFAULT_THROTTLE_RATES, "principal": "3/min"}
    )
    client = api_client_for(token=tokens["read"])
    url = reverse("api:project-list")
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(url)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    # Another principal has its own allowance (tokens are keyed by their random lookup id,
    # so counts left in the cache by earlier runs cannot leak in).
    assert api_client_for(token=tokens["read_write"]).get(url).status_code == 200
