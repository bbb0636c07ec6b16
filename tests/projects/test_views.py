from django.urls import reverse

from apps.projects.models import Endpoint, Project


def test_member_creates_a_project_from_the_form(client, world):
    client.force_login(world.member)
    response = client.post(
        reverse("project-create", kwargs={"org_slug": "acme"}),
        {"name": "Doc Search", "stage": "poc", "risk_tier": "low", "data_classification": "internal"},
    )
    assert response.status_code == 302
    project = Project.objects.get(organization=world.org, slug="doc-search")
    assert project.owner == world.member


def test_duplicate_slug_is_shown_on_the_form_and_nothing_is_written(client, world):
    client.force_login(world.owner)
    before = Project.objects.count()
    response = client.post(
        reverse("project-create", kwargs={"org_slug": "acme"}),
        {"name": "Support Copilot", "stage": "poc", "risk_tier": "low", "data_classification": "internal"},
    )
    assert response.status_code == 200
    assert "Already used in this organization." in response.content.decode()
    assert Project.objects.count() == before


def test_negative_budget_is_refused_on_the_form(client, world):
    client.force_login(world.owner)
    response = client.post(
        reverse("project-edit", kwargs={"org_slug": "acme", "slug": world.project.slug}),
        {
            "name": "Support Copilot",
            "stage": "poc",
            "risk_tier": "low",
            "data_classification": "internal",
            "monthly_budget_usd": "-5",
        },
    )
    assert response.status_code == 200
    world.project.refresh_from_db()
    assert world.project.monthly_budget_usd is None


def test_endpoint_form_never_renders_the_stored_key(client, world):
    client.force_login(world.owner)
    response = client.get(reverse("endpoint-edit", kwargs={"org_slug": "acme", "pk": world.endpoint.pk}))
    text = response.content.decode()
    assert response.status_code == 200
    assert "sk-acme-very-secret" not in text
    assert "stored (encrypted; not shown)" in text


def test_saving_the_endpoint_form_with_an_empty_key_keeps_the_key(client, world):
    client.force_login(world.owner)
    data = {
        "name": "primary",
        "base_url": "http://127.0.0.1:9/v1",
        "api_flavour": "chat",
        "model_name": "m2",
        "api_key": "",
        "price_model": "self_hosted",
        "gpu_type": "L4",
        "gpus_per_replica": 1,
        "gpu_hourly_usd": "1.00",
        "min_replicas": 1,
        "max_replicas": 3,
    }
    response = client.post(reverse("endpoint-edit", kwargs={"org_slug": "acme", "pk": world.endpoint.pk}), data)
    assert response.status_code == 302
    endpoint = Endpoint.objects.get(pk=world.endpoint.pk)
    assert endpoint.model_name == "m2"
    assert endpoint.api_key.reveal() == "sk-acme-very-secret"


def test_test_connection_button_reports_an_unreachable_endpoint_without_failing(client, world):
    client.force_login(world.owner)
    response = client.post(reverse("endpoint-test", kwargs={"org_slug": "acme", "pk": world.endpoint.pk}), follow=True)
    assert response.status_code == 200
    assert "Could not connect" in response.content.decode()
    world.endpoint.refresh_from_db()
    assert world.endpoint.last_check_ok is False


def test_org_switcher_lists_every_organization_of_the_user(client, world):
    from apps.orgs import services
    from apps.orgs.access import Access

    services.membership_add(
        access=Access.for_user(world.outsider), org=world.other_org, username="owner", role="viewer", functions=[]
    )
    client.force_login(world.owner)
    text = client.get(reverse("dashboard", kwargs={"org_slug": "acme"})).content.decode()
    assert 'href="/o/acme/"' in text and 'href="/o/globex/"' in text
    # Switching remembers the choice for the home page.
    client.get(reverse("dashboard", kwargs={"org_slug": "globex"}))
    assert client.get("/")["Location"] == "/o/globex/"


def test_user_without_organization_is_offered_to_create_one(client, db):
    from tests.conftest import make_user

    client.force_login(make_user("newbie"))
    assert client.get("/")["Location"] == reverse("org-create")
    response = client.post(reverse("org-create"), {"name": "Newbie Labs"})
    assert response["Location"] == "/o/newbie-labs/"


def test_a_name_without_letters_or_digits_needs_a_slug(client, world):
    client.force_login(world.owner)
    response = client.post(
        reverse("project-create", kwargs={"org_slug": "acme"}),
        {"name": "!!!", "stage": "poc", "risk_tier": "low", "data_classification": "internal"},
    )
    assert response.status_code == 200
    assert "Give a slug with letters or digits." in response.content.decode()
    assert client.get(reverse("dashboard", kwargs={"org_slug": "acme"})).status_code == 200


def test_the_project_page_title_is_just_the_project_name(client, world):
    client.force_login(world.owner)
    url = reverse("project-detail", kwargs={"org_slug": "acme", "slug": world.project.slug})
    text = client.get(url).content.decode()
    assert "<title>Support Copilot · readiness</title>" in text
    assert text.count('data-testid="plan-list"') == 1
