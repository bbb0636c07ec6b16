from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.debug import sensitive_variables

from apps.core.errors import ApplicationError
from apps.core.guarded_http import guarded_request, policy_from_settings
from apps.core.headers import header_value_problem, request_id_header
from apps.core.readiness import readiness_changed
from apps.core.services import (
    SECRET_CHANGED,
    SECRET_DROPPED,
    SECRET_REMOVED,
    SECRET_SET,
    audit_record,
    diff,
    require_writer,
    save_unique,
    snapshot,
)
from apps.net.netguard import OutboundRefused, parse_http_url, same_origin
from apps.orgs.access import Access
from apps.orgs.models import Organization
from apps.projects.models import ApiFlavour, Endpoint, PriceModel, Project

PROJECT_FIELDS = [
    "name",
    "slug",
    "owner",
    "use_case",
    "stage",
    "risk_tier",
    "data_classification",
    "monthly_budget_usd",
    "expected_peak_rpm",
]
ENDPOINT_FIELDS = [
    "name",
    "base_url",
    "api_flavour",
    "model_name",
    "api_key",
    "metrics_url",
    "price_model",
    "gpu_type",
    "gpus_per_replica",
    "gpu_hourly_usd",
    "min_replicas",
    "max_replicas",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "request_id_header",
]
KEY_DROPPED_NOTICE = (
    "The base URL now points to another origin (scheme, host or port), so the stored API key was dropped: "
    "a key is only ever sent where it was entered. Enter it again if the new server needs it."
)


def _unknown_fields(fields: dict, allowed: list[str]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ApplicationError("Unknown fields.", detail={name: ["Unknown field."] for name in unknown})


# --- projects ------------------------------------------------------------------------------


def _validate_project(fields: dict) -> None:
    errors = {}
    if not str(fields.get("name", "")).strip():
        errors["name"] = ["This field is required."]
    budget = fields.get("monthly_budget_usd")
    if budget is not None and Decimal(budget) < 0:
        errors["monthly_budget_usd"] = ["Must be zero or more."]
    if errors:
        raise ApplicationError("The project has invalid fields.", detail=errors)


def _clean_slug(raw: str) -> str:
    slug = slugify(raw)[:60].strip("-")
    if not slug:
        raise ApplicationError(
            "The slug needs letters or digits.", detail={"slug": ["Give a slug with letters or digits."]}
        )
    return slug


def _save_project(project: Project) -> None:
    message = f"A project with the slug {project.slug!r} already exists in this organization."
    save_unique(project, field="slug", message=message, hint="Already used in this organization.")


@transaction.atomic
def project_create(*, access: Access, organization: Organization, **fields) -> Project:
    """Create a project in `organization`; the slug defaults to the slugified name."""
    require_writer(access, organization.pk)
    _unknown_fields(fields, PROJECT_FIELDS)
    _validate_project(fields)
    fields["slug"] = _clean_slug(fields.get("slug") or fields["name"])
    fields.setdefault("owner", access.user)
    project = Project(organization=organization, **fields)
    _save_project(project)
    audit_record(
        access=access,
        organization_id=organization.pk,
        action="project.create",
        obj=project,
        changes=diff({}, snapshot(project, PROJECT_FIELDS)),
    )
    readiness_changed(project)  # its first decision is queued at once (NO-GO: no checklists)
    return project


@transaction.atomic
def project_update(*, access: Access, project: Project, **fields) -> Project:
    require_writer(access, project.organization_id)
    _unknown_fields(fields, PROJECT_FIELDS)
    before = snapshot(project, PROJECT_FIELDS)
    _validate_project(
        {
            "name": fields.get("name", project.name),
            "monthly_budget_usd": fields.get("monthly_budget_usd", project.monthly_budget_usd),
        }
    )
    for name, value in fields.items():
        setattr(project, name, value)
    project.slug = _clean_slug(project.slug)
    _save_project(project)
    changes = diff(before, snapshot(project, PROJECT_FIELDS))
    if changes:
        audit_record(
            access=access,
            organization_id=project.organization_id,
            action="project.update",
            obj=project,
            changes=changes,
        )
        readiness_changed(project)  # the budget and the expected peak feed the cost rules
    return project


@transaction.atomic
def project_delete(*, access: Access, project: Project) -> None:
    require_writer(access, project.organization_id)
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="project.delete",
        obj=project,
        changes=diff(snapshot(project, PROJECT_FIELDS), {}),
    )
    project.delete()


# --- endpoints -----------------------------------------------------------------------------


def _validate_endpoint(endpoint: Endpoint) -> None:
    """Business rules across fields; field types are checked by forms and serializers."""
    errors: dict[str, list[str]] = {}
    for name in ("base_url", "metrics_url"):
        value = getattr(endpoint, name)
        if value:
            try:
                parse_http_url(value)
            except OutboundRefused as exc:
                errors[name] = [str(exc)]
    if not endpoint.base_url:
        errors["base_url"] = ["This field is required."]
    if not endpoint.model_name:
        errors["model_name"] = ["This field is required."]
    # A str is a key being saved now; a stored one comes back as an EncryptedSecret.
    if isinstance(endpoint.api_key, str) and (problem := header_value_problem(endpoint.api_key)):
        errors["api_key"] = [problem]
    if endpoint.api_flavour not in ApiFlavour.values:
        errors["api_flavour"] = ["Unknown API flavour."]
    try:
        request_id_header(endpoint.request_id_header)
    except ValueError as exc:
        errors["request_id_header"] = [f"{exc}."]
    for name in ("gpu_hourly_usd", "input_usd_per_mtok", "output_usd_per_mtok"):
        value = getattr(endpoint, name)
        if value is not None and Decimal(value) < 0:
            errors[name] = ["Must be zero or more."]
    if endpoint.price_model == PriceModel.SELF_HOSTED:
        for name in ("gpu_type", "gpus_per_replica", "gpu_hourly_usd"):
            if getattr(endpoint, name) in (None, ""):
                errors.setdefault(name, ["Required for a self-hosted endpoint."])
        if endpoint.gpus_per_replica == 0:
            errors["gpus_per_replica"] = ["Must be at least 1."]
        lo, hi = endpoint.min_replicas, endpoint.max_replicas
        if lo is not None and hi is not None and lo > hi:
            errors["min_replicas"] = ["Must not exceed max replicas."]
    elif endpoint.price_model == PriceModel.HOSTED_API:
        for name in ("input_usd_per_mtok", "output_usd_per_mtok"):
            if getattr(endpoint, name) is None:
                errors.setdefault(name, ["Required for a hosted API endpoint."])
    else:
        errors["price_model"] = ["Unknown price model."]
    if errors:
        raise ApplicationError("The endpoint has invalid fields.", detail=errors)


def _save_endpoint(endpoint: Endpoint) -> None:
    _validate_endpoint(endpoint)
    message = f"This project already has an endpoint named {endpoint.name!r}."
    save_unique(endpoint, field="name", message=message, hint="Already used in this project.")


# Every function that holds a key in clear (a new one being saved, or one revealed to be sent) is
# marked sensitive, so Django's error page and error reports show its locals, and those of what it
# calls, as stars.
@sensitive_variables()
@transaction.atomic
def endpoint_create(*, access: Access, project: Project, **fields) -> Endpoint:
    """Create an endpoint. `api_key` is encrypted on save and never read back by the API."""
    require_writer(access, project.organization_id)
    _unknown_fields(fields, ENDPOINT_FIELDS)
    endpoint = Endpoint(project=project, **fields)
    _save_endpoint(endpoint)
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="endpoint.create",
        obj=endpoint,
        changes=diff({}, snapshot(endpoint, ENDPOINT_FIELDS)),
    )
    return endpoint


@sensitive_variables()
@transaction.atomic
def endpoint_update(*, access: Access, endpoint: Endpoint, **fields) -> Endpoint:
    """Update an endpoint. An absent or empty `api_key` keeps the stored key; `clear_api_key` removes it.

    A stored key only ever goes to the origin (scheme, host and port) it was entered for: a
    `base_url` on another origin drops it unless the same update brings a key. Otherwise anyone
    who may edit the endpoint could point it at their own server and press "test connection" (or
    run a probe) to collect the key. `endpoint.api_key_dropped` tells the caller it happened.
    """
    require_writer(access, endpoint.project.organization_id)
    clear_key = fields.pop("clear_api_key", False)
    if clear_key and fields.get("api_key"):
        raise ApplicationError(
            "Give a new api_key or clear_api_key, not both.", detail={"clear_api_key": ["Conflicts with api_key."]}
        )
    _unknown_fields(fields, ENDPOINT_FIELDS)
    before = snapshot(endpoint, ENDPOINT_FIELDS)
    if not fields.get("api_key"):
        fields.pop("api_key", None)
    moved = "base_url" in fields and not same_origin(str(fields["base_url"]), endpoint.base_url)
    drop_key = moved and bool(endpoint.api_key) and "api_key" not in fields and not clear_key
    for name, value in fields.items():
        setattr(endpoint, name, value)
    if clear_key or drop_key:
        endpoint.api_key = None
    _save_endpoint(endpoint)
    changes = diff(before, snapshot(endpoint, ENDPOINT_FIELDS))
    if "api_key" in fields:  # a new key looks like "(set)" -> "(set)"; record that it changed
        changes["api_key"] = [before["api_key"], SECRET_CHANGED if before["api_key"] == SECRET_SET else SECRET_SET]
    elif drop_key:
        changes["api_key"] = [SECRET_SET, SECRET_DROPPED]
    elif "api_key" in changes:
        changes["api_key"] = [SECRET_SET, SECRET_REMOVED]
    endpoint.api_key_dropped = drop_key
    if changes:
        audit_record(
            access=access,
            organization_id=endpoint.project.organization_id,
            action="endpoint.update",
            obj=endpoint,
            changes=changes,
        )
        readiness_changed(endpoint.project)  # prices feed the cost projection
    return endpoint


@transaction.atomic
def endpoint_delete(*, access: Access, endpoint: Endpoint) -> None:
    org_id = endpoint.project.organization_id
    require_writer(access, org_id)
    audit_record(
        access=access,
        organization_id=org_id,
        action="endpoint.delete",
        obj=endpoint,
        changes=diff(snapshot(endpoint, ENDPOINT_FIELDS), {}),
    )
    endpoint.delete()


@sensitive_variables()
def endpoint_test_connection(*, access: Access, endpoint: Endpoint) -> dict:
    """GET {base_url}/models through the guarded client; store and return what happened.

    Never raises for a network problem: an unreachable or refused endpoint is a result.
    """
    import httpx

    require_writer(access, endpoint.project.organization_id)
    url = endpoint.base_url.rstrip("/") + "/models"
    headers = {"Accept": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
    result: dict = {"url": url, "ok": False, "models": [], "status_code": None, "elapsed_ms": None}
    try:
        response = guarded_request("GET", url, policy=policy_from_settings(), headers=headers)
    except OutboundRefused as exc:
        result["message"] = f"Refused: {exc}"
    except httpx.TimeoutException:
        result["message"] = "Timed out waiting for the endpoint."
    except httpx.HTTPError as exc:
        result["message"] = f"Could not connect: {type(exc).__name__}: {exc}"
    else:
        result.update(status_code=response.status_code, elapsed_ms=round(response.elapsed_ms, 1))
        models = _model_ids(response)
        if response.status_code != 200:
            result["message"] = f"HTTP {response.status_code} from {url}"
        elif models is None:
            result["message"] = "The endpoint answered, but not with an OpenAI model list."
        else:
            result.update(ok=True, models=models)
            served = endpoint.model_name in models
            result["message"] = f"OK: {len(models)} model(s); " + (
                f"{endpoint.model_name!r} is served." if served else f"{endpoint.model_name!r} is NOT among them."
            )
            result["ok"] = served
    Endpoint.objects.filter(pk=endpoint.pk).update(
        last_check_at=timezone.now(), last_check_ok=result["ok"], last_check_detail=result["message"][:500]
    )
    return result


def _model_ids(response) -> list[str] | None:
    try:
        data = response.json()
        return [str(m["id"]) for m in data["data"]]
    except (ValueError, KeyError, TypeError):
        return None
