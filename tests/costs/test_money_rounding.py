"""Money leaves the cost projection rounded to cents: a float sum such as 422.40000000000003
never reaches a page, a report or the API."""

from apps.costs import pricing
from apps.costs.services import _projection_fields


def test_projected_money_is_rounded_to_cents_and_token_prices_to_a_hundredth_of_a_cent():
    option = pricing.Option(
        key="always_on",
        label="Always on",
        usd_per_month=3 * 140.8,
        meets_slo=True,
        usd_per_mtok_output=0.123456789,
        vs_hosted_usd=-12.3412,
    )
    projection = pricing.Projection(
        options=[option],
        cheapest=option,
        always_on_usd_per_month=option.usd_per_month,
        saving_vs_always_on_usd=0.1 + 0.2,
        saving_vs_always_on_pct=None,
        requests_per_month=1000,
        output_tokens_per_month=1e6,
        peak_rps=1.0,
        average_rps=0.5,
    )
    assert repr(option.usd_per_month) == "422.40000000000003"  # what the float sum gives
    fields = _projection_fields(projection)
    (shown,) = fields["options"]
    assert repr(shown["usd_per_month"]) == "422.4"
    assert fields["projected_monthly_usd"] == 422.4 and fields["saving_vs_always_on_usd"] == 0.3
    assert shown["usd_per_mtok_output"] == 0.1235 and shown["vs_hosted_usd"] == -12.34
