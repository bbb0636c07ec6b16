"""Connectors, the events they receive, and deliveries with retries, backoff and a dead letter.

Every outbound call is a Delivery row, sent through the guarded HTTP client by a Celery task; a
row is claimed with a conditional update, so a redelivered task or a second worker never sends
it twice at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apps.core.errors import ApplicationError
from apps.core.guarded_http import guarded_request, policy_from_settings
from apps.core.headers import header_value_problem
from apps.core.services import (
    SECRET_CHANGED,
    SECRET_REGENERATED,
    SECRET_SET,
    audit_record,
    diff,
    require_writer,
    save_unique,
    snapshot,
)
from apps.integrations import retry, signing, ticketing
from apps.integrations.models import (
    Connector,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    InboundEvent,
    InboundStatus,
    Kind,
    TicketLink,
    TicketState,
)
from apps.net.netguard import OutboundRefused, parse_http_url, same_origin
from apps.orgs.access import Access
from apps.orgs.models import Organization

logger = logging.getLogger(__name__)

CONNECTOR_FIELDS = ["name", "kind", "url", "config", "secret", "events", "active", "project"]
EXCERPT_BYTES = 2000
SUBSCRIBABLE = [e for e in Event.values if e != Event.TEST]
# What each ticketing kind needs in `config` besides the secret (docs/integrations.md).
REQUIRED_CONFIG = {Kind.JIRA: ("email", "project_key"), Kind.SERVICENOW: ("table",), Kind.GITHUB: ("repo",)}


def _require_admin(access: Access, org_id: int) -> None:
    require_writer(access, org_id)
    if not access.can_admin(org_id):
        raise ApplicationError("Only owners and admins manage connectors.", code="forbidden", status=403)


def _validate(connector: Connector) -> None:
    errors: dict[str, list[str]] = {}
    if not connector.name.strip():
        errors["name"] = ["This field is required."]
    if connector.kind not in Kind.values:
        errors["kind"] = [f"One of {', '.join(Kind.values)}."]
    try:
        parse_http_url(connector.url)
    except OutboundRefused as exc:
        errors["url"] = [str(exc)]
    unknown = [e for e in connector.events or [] if e not in SUBSCRIBABLE]
    if not isinstance(connector.events, list) or not connector.events or unknown:
        errors["events"] = [
            f"Choose events among {', '.join(SUBSCRIBABLE)}" + (f"; unknown: {unknown}" if unknown else "")
        ]
    if not isinstance(connector.config, dict):
        errors["config"] = ["An object."]
    else:
        missing = [k for k in REQUIRED_CONFIG.get(connector.kind, ()) if not connector.config.get(k)]
        if missing:
            errors["config"] = [f"{Kind(connector.kind).label} needs {', '.join(missing)} in config."]
        elif connector.kind == Kind.GITHUB and str(connector.config["repo"]).count("/") != 1:
            errors["config"] = ['repo is "owner/name".']
    # A str is a secret being saved now (a stored one comes back as an EncryptedSecret). Ticketing
    # tokens go in an Authorization header; a webhook secret is an HMAC key that the receiving side
    # types in too, where a line break or a control character is a paste mistake it never matches.
    if isinstance(connector.secret, str) and (problem := header_value_problem(connector.secret)):
        errors["secret"] = [problem]
    elif connector.kind == Kind.WEBHOOK and isinstance(connector.secret, str):
        # Checked here, not when signing: a secret that cannot sign would fail every delivery.
        if problem := signing.secret_problem(connector.secret):
            errors["secret"] = [problem]
    if connector.kind != Kind.WEBHOOK and not connector.secret:
        errors["secret"] = ["The API token (Jira, GitHub) or password / bearer token (ServiceNow) is required."]
    if connector.project_id and connector.project.organization_id != connector.organization_id:
        errors["project"] = ["Not a project of this organization."]
    if errors:
        raise ApplicationError("The connector has invalid fields.", detail=errors)


# Functions holding a secret in clear (one being saved, generated or revealed to sign) are marked
# sensitive: Django's error page and error reports show their locals, and their callees', as stars.
@sensitive_variables()
@transaction.atomic
def connector_create(*, access: Access, organization: Organization, **fields) -> tuple[Connector, str | None]:
    """Create a connector. A webhook without a secret gets a new `whsec_…` one, returned once."""
    _require_admin(access, organization.pk)
    unknown = set(fields) - set(CONNECTOR_FIELDS)
    if unknown:
        raise ApplicationError("Unknown fields.", detail={f: ["Unknown field."] for f in sorted(unknown)})
    shown = None
    if fields.get("kind", Kind.WEBHOOK) == Kind.WEBHOOK and not fields.get("secret"):
        fields["secret"] = shown = signing.new_secret()
    connector = Connector(organization=organization, created_by=access.user, **fields)
    connector.inbound_secret = new_inbound_secret(connector.kind)
    _validate(connector)
    save_unique(connector, field="name", message=f"A connector named {connector.name!r} exists.")
    audit_record(
        access=access,
        organization_id=organization.pk,
        action="connector.create",
        obj=connector,
        changes=diff({}, snapshot(connector, CONNECTOR_FIELDS)),
    )
    return connector, shown


TOKEN_NOT_CARRIED = (
    "The URL now points to another origin (scheme, host or port): the stored token is only ever sent "
    "where it was entered. Enter the token for the new address."
)


@sensitive_variables()
@transaction.atomic
def connector_update(*, access: Access, connector: Connector, **fields) -> tuple[Connector, str | None]:
    """Update; an absent or empty secret keeps the stored one, on the same origin only.

    A stored secret goes only to the origin (scheme, host and port) it was given for: otherwise an
    admin could point the connector at their own server and collect the token with "send test", or
    have it sign payloads for the real receiver. So a URL on another origin drops the secret unless
    the same update brings one. A webhook then gets a new signing secret, returned once (as on
    create); a ticketing connector cannot work without its token, so the update is refused until
    it is given. Returns the connector and the generated secret, if any.
    """
    _require_admin(access, connector.organization_id)
    unknown = set(fields) - set(CONNECTOR_FIELDS) - {"kind"}
    if unknown:
        raise ApplicationError("Unknown fields.", detail={f: ["Unknown field."] for f in sorted(unknown)})
    if not fields.get("secret"):
        fields.pop("secret", None)
    moved = "url" in fields and not same_origin(str(fields["url"]), connector.url)
    drop = moved and bool(connector.secret) and "secret" not in fields
    before = snapshot(connector, CONNECTOR_FIELDS)
    for name, value in fields.items():
        setattr(connector, name, value)
    shown = None
    if drop and connector.kind == Kind.WEBHOOK:
        connector.secret = shown = signing.new_secret()
    elif drop:
        raise ApplicationError(
            "The connector now points to another origin: enter its token again.",
            detail={"secret": [TOKEN_NOT_CARRIED]},
        )
    _validate(connector)
    save_unique(connector, field="name", message=f"A connector named {connector.name!r} exists.")
    changes = diff(before, snapshot(connector, CONNECTOR_FIELDS))
    if "secret" in fields:  # a new secret looks like "(set)" -> "(set)"; record that it changed
        changes["secret"] = [before["secret"], SECRET_CHANGED if before["secret"] == SECRET_SET else SECRET_SET]
    elif drop:
        changes["secret"] = [SECRET_SET, SECRET_REGENERATED]
    if changes:
        audit_record(
            access=access,
            organization_id=connector.organization_id,
            action="connector.update",
            obj=connector,
            changes=changes,
        )
    return connector, shown


@transaction.atomic
def connector_delete(*, access: Access, connector: Connector) -> None:
    _require_admin(access, connector.organization_id)
    audit_record(
        access=access,
        organization_id=connector.organization_id,
        action="connector.delete",
        obj=connector,
        changes=diff(snapshot(connector, CONNECTOR_FIELDS), {}),
    )
    connector.delete()


def new_inbound_secret(kind: str) -> str:
    # GitHub and Jira take any string as the HMAC key; Standard Webhooks wants whsec_<base64>.
    return secrets.token_urlsafe(32) if kind in (Kind.GITHUB, Kind.JIRA) else signing.new_secret()


@sensitive_variables()
@transaction.atomic
def inbound_secret_rotate(*, access: Access, connector: Connector) -> str:
    """A new secret for callbacks from the other side; returned once."""
    _require_admin(access, connector.organization_id)
    secret = new_inbound_secret(connector.kind)
    connector.inbound_secret = secret
    connector.save(update_fields=["inbound_secret", "updated_at"])
    audit_record(
        access=access,
        organization_id=connector.organization_id,
        action="connector.rotate_inbound",
        obj=connector,
        changes={"inbound_secret": [SECRET_SET, SECRET_CHANGED]},
    )
    return secret


# --- callbacks from the other side ------------------------------------------------------------


def _inbound_allowed(connector: Connector) -> bool:
    """At most READINESS_INBOUND_RATE_PER_MINUTE callbacks a minute per connector (a fixed window,
    counted in the cache). Checked before anything else and answered without a row: a flood costs
    a cache increment each, and the connector's callback list holds at most this many a minute."""
    key = f"inbound-rate:{connector.pk}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key) <= settings.READINESS_INBOUND_RATE_PER_MINUTE
    except ValueError:  # the key expired between add and incr
        return True


@sensitive_variables()
def inbound_receive(connector: Connector, headers, body: bytes) -> tuple[int, dict]:
    """Verify and apply one callback; every outcome is recorded. Returns (HTTP status, JSON body)."""
    from apps.integrations import inbound

    def reject(status: int, reason: str, delivery_id: str = "") -> tuple[int, dict]:
        InboundEvent.objects.create(
            connector=connector, delivery_id=delivery_id[:100], status=InboundStatus.REJECTED, detail=reason[:500]
        )
        return status, {"error": {"code": "rejected", "message": reason, "detail": {}}}

    if not _inbound_allowed(connector):
        reason = f"more than {settings.READINESS_INBOUND_RATE_PER_MINUTE} callbacks a minute for this connector"
        return 429, {"error": {"code": "rejected", "message": reason, "detail": {}}}
    if len(body) > settings.READINESS_INBOUND_MAX_BYTES:
        return reject(413, f"body larger than {settings.READINESS_INBOUND_MAX_BYTES} bytes")
    if not connector.inbound_secret:
        return reject(403, "this connector has no inbound secret; create one on its page")
    try:
        update = inbound.PARSERS[connector.kind](headers, body, connector.inbound_secret.reveal(), now=time.time())
    except inbound.Rejected as exc:
        return reject(exc.status, exc.reason)
    digest = hashlib.sha256(body).hexdigest() if connector.kind in inbound.BODY_DEDUPED else ""
    with transaction.atomic():
        seen = InboundEvent.objects.filter(connector=connector).exclude(status=InboundStatus.REJECTED)
        if seen.filter(delivery_id=update.delivery_id).exists():
            return reject(409, "delivery already received (replay)", update.delivery_id)
        if digest and seen.filter(body_sha256=digest).exists():
            return reject(409, "this body was already received under another delivery id (replay)", update.delivery_id)
        link = (
            TicketLink.objects.filter(connector=connector, external_key=update.ticket).first()
            if update.ticket
            else None
        )
        if link is None or update.state is None:
            InboundEvent.objects.create(
                connector=connector,
                delivery_id=update.delivery_id,
                body_sha256=digest,
                status=InboundStatus.IGNORED,
                detail="no linked ticket or no state change",
            )
            return 202, {"status": "ignored"}
        before = link.state
        link.state = update.state
        link.save(update_fields=["state", "updated_at"])
        InboundEvent.objects.create(
            connector=connector,
            delivery_id=update.delivery_id,
            status=InboundStatus.APPLIED,
            ticket=link,
            detail=f"{before} → {update.state}",
            body_sha256=digest,
        )
        audit_record(
            access=Access.system(),
            organization_id=connector.organization_id,
            action="ticket.update",
            obj=link,
            changes={"state": [before, update.state], "via": [None, f"{connector.get_kind_display()} callback"]},
        )
    return 200, {"status": "applied", "ticket": link.external_key, "state": link.state}


# --- events ------------------------------------------------------------------------------------


def absolute(path: str) -> str:
    """A path of this site as a URL the receiver can open (READINESS_BASE_URL in front)."""
    return settings.READINESS_BASE_URL.rstrip("/") + path if path.startswith("/") else path


# Keys whose string values are links to this site: the emitters give site paths ("/o/acme/runs/7/"),
# a receiver elsewhere needs the whole URL. "evidence" is a decision reason's link.
LINK_KEYS = ("url", "evidence")


def _absolute_links(value):
    """`value` with every link to this site made absolute, at any depth (a decision's reasons, a
    run's data): one place, so no emitter can send a path a receiver cannot open."""
    if isinstance(value, dict):
        return {
            k: absolute(v) if isinstance(v, str) and (k in LINK_KEYS or k.endswith("_url")) else _absolute_links(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_absolute_links(v) for v in value]
    return value


def event_payload(event: str, *, organization: Organization, project=None, data: dict | None = None) -> dict:
    body = {"type": event, "timestamp": timezone.now().isoformat(), "organization": organization.slug}
    if project is not None:
        from django.urls import reverse

        url = reverse("project-readiness", kwargs={"org_slug": organization.slug, "slug": project.slug})
        body["project"] = {"id": project.pk, "name": project.name, "slug": project.slug, "url": absolute(url)}
    body["data"] = _absolute_links(data or {})
    return body


def emit(event: str, *, project, finding_key: str = "", data: dict | None = None) -> list[Delivery]:
    """Queue a delivery of `event` to every active connector of the project's org subscribed to it
    (org-wide, or for this project). Sent once the caller's transaction commits."""
    organization = project.organization
    connectors = Connector.objects.filter(organization=organization, active=True)
    deliveries = []
    payload = event_payload(event, organization=organization, project=project, data=data)
    for connector in connectors:
        if event not in (connector.events or []) or (connector.project_id and connector.project_id != project.pk):
            continue
        deliveries.append(_queue(connector, event, payload, project=project, finding_key=finding_key))
    return deliveries


def _queue(connector: Connector, event: str, payload: dict, *, project=None, finding_key: str = "") -> Delivery:
    delivery = Delivery.objects.create(
        connector=connector,
        project=project,
        event=event,
        event_id=f"msg_{uuid.uuid4().hex}",
        finding_key=finding_key[:200],
        payload=payload,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def _enqueue(delivery_id: int) -> None:
    from apps.integrations.tasks import delivery_send_task

    try:
        delivery_send_task.delay(delivery_id)
    except Exception:  # noqa: BLE001 - the change that caused it is committed: never fail it now
        # The delivery is stored as due: beat's deliveries-due task (every 10 s) sends it instead.
        logger.warning("delivery %s not queued (broker away): the next due run sends it", delivery_id, exc_info=True)


# --- sending -----------------------------------------------------------------------------------


def _request_for(delivery: Delivery) -> tuple[str, str, dict[str, str], bytes | None]:
    """Method, URL, headers and the exact body bytes of the delivery's next request."""
    connector = delivery.connector
    headers = {"Content-Type": "application/json", "User-Agent": "readiness/1"}
    if connector.kind == Kind.WEBHOOK:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        stamp = int(timezone.now().timestamp())
        headers.update(signing.headers(connector.secret.reveal(), delivery.event_id, stamp, body))
        return "POST", connector.url, headers, body
    build, auth = ticketing.BUILDERS[connector.kind]
    headers.update(auth(connector.config, connector.secret.reveal()))
    base = connector.url.rstrip("/")
    if delivery.event == Event.TEST:
        return "GET", base + ticketing.TEST_PATHS[connector.kind](connector.config), headers, None
    link = _ticket(delivery)
    finding = ticketing.finding_from_payload(delivery.payload)
    request = build(delivery.action, connector.config, link.external_key if link else None, finding)[delivery.step]
    return request.method, base + request.path, headers, json.dumps(request.json).encode()


def _ticket(delivery: Delivery) -> TicketLink | None:
    return TicketLink.objects.filter(connector=delivery.connector, finding_key=delivery.finding_key).first()


def _plan_ticket_action(delivery: Delivery) -> bool:
    """Decide, at the first attempt, what this delivery does to its finding's ticket. False when an
    earlier delivery of the same finding is still on its way (they go in order, so two events
    cannot both open a ticket)."""
    in_flight = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    earlier = Delivery.objects.filter(
        connector=delivery.connector, finding_key=delivery.finding_key, pk__lt=delivery.pk, status__in=in_flight
    )
    if delivery.finding_key and earlier.exists():
        return False
    if not delivery.action:
        link = _ticket(delivery)
        delivery.action = ticketing.action_for(
            delivery.event, delivery.payload.get("data", {}), link.state if link else None
        )
    return True


def _record_ticket(delivery: Delivery, response) -> bool:
    """After a successful request: remember the ticket or its new state. True when the action has
    another request to send."""
    connector = delivery.connector
    link = _ticket(delivery)
    if delivery.action == ticketing.CREATE:
        key, url = ticketing.ticket_from_response(connector.kind, connector.url, response.json(), connector.config)
        link, _ = TicketLink.objects.update_or_create(
            connector=connector,
            finding_key=delivery.finding_key,
            defaults={"project": delivery.project, "external_key": key, "url": url, "state": TicketState.OPEN},
        )
    build, _ = ticketing.BUILDERS[connector.kind]
    steps = len(
        build(
            delivery.action,
            connector.config,
            link.external_key if link else "-",
            ticketing.finding_from_payload(delivery.payload),
        )
    )
    if delivery.step + 1 < steps:
        return True
    if link is not None and delivery.action in (ticketing.CLOSE, ticketing.REOPEN):
        link.state = TicketState.CLOSED if delivery.action == ticketing.CLOSE else TicketState.OPEN
        link.save(update_fields=["state", "updated_at"])
    return False


@sensitive_variables()
def attempt(delivery_id: int) -> Delivery | None:
    """Send one due delivery's next request once; record what happened and when to try again.
    Returns None when another worker has it, it is not due, or it must wait for an earlier one.

    The claim counts the attempt, before anything is sent: a worker killed mid-send has used it as
    well. Every failure is an attempt, whatever failed (no answer, an error status, or a request
    that could not even be made: a stored secret that cannot sign, one the configured keys cannot
    decrypt), so a delivery ends in the dead letter after READINESS_DELIVERY_MAX_ATTEMPTS instead
    of coming back for ever.
    """
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now).update(
        status=DeliveryStatus.SENDING, last_attempt_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("connector", "connector__organization").get(pk=delivery_id)
    try:
        return _send(delivery, now)
    except Exception as exc:  # a bug or bad stored data: still an attempt, never a claim left behind
        logger.exception("delivery %s could not be sent", delivery.pk)
        _record(delivery, None, "", _scrubbed(f"could not send: {type(exc).__name__}: {exc}", delivery), None)
        return delivery


def _send(delivery: Delivery, now) -> Delivery | None:
    ticketing_kind = delivery.connector.kind != Kind.WEBHOOK and delivery.event != Event.TEST
    if ticketing_kind and not _plan_ticket_action(delivery):
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, attempts=F("attempts") - 1, next_attempt_at=now + timedelta(seconds=5)
        )
        return None
    if ticketing_kind and delivery.action == ticketing.NOTHING:  # nothing was sent: not an attempt
        delivery.status, delivery.next_attempt_at, delivery.error = DeliveryStatus.SUCCEEDED, None, "no open ticket"
        delivery.attempts -= 1
        delivery.save()
        return delivery
    code, excerpt, error, retry_after = None, "", "", None
    try:
        method, url, headers, body = _request_for(delivery)
    except ValueError as exc:  # e.g. a secret stored before it was checked, or one the keys cannot decrypt
        _record(delivery, None, "", f"could not make the request: {exc}", None)
        return delivery
    try:
        response = guarded_request(method, url, policy=policy_from_settings(), headers=headers, content=body)
    except OutboundRefused as exc:
        error = f"refused: {exc}"
    except httpx.HTTPError as exc:
        error = _scrubbed(f"{type(exc).__name__}: {exc}", delivery, sent=headers)[:500] or type(exc).__name__
    else:
        # A receiver, or a proxy's error page, may quote the request's credentials: scrubbed before
        # the excerpt is kept, since anyone in the organization reads it (a viewer too). Scrubbed
        # over a wider window than is kept, so a credential across the cut leaves no prefix behind.
        text = response.body[: EXCERPT_BYTES + 4096].decode("utf-8", "replace")
        code, excerpt = response.status_code, _scrubbed(text, delivery, sent=headers)[:EXCERPT_BYTES]
        retry_after = retry.retry_after_seconds(response.headers.get("retry-after"), now=timezone.now())
        if ticketing_kind and 200 <= code < 300:
            try:
                more = _record_ticket(delivery, response)
            except (KeyError, TypeError, ValueError):
                code, error = None, "the ticketing system answered 2xx without the ticket's key"
            else:
                if more:  # the action's next request goes right away, as its own attempt
                    delivery.step, delivery.status, delivery.next_attempt_at = delivery.step + 1, "pending", now
                    delivery.response_code, delivery.response_excerpt = code, excerpt
                    delivery.save()
                    _remember_attempt(delivery, code, excerpt, "")
                    transaction.on_commit(lambda: _enqueue(delivery.pk))
                    return delivery
    _record(delivery, code, excerpt, error, retry_after)
    return delivery


def _scrubbed(message: str, delivery: Delivery, sent: dict[str, str] | None = None) -> str:
    """`message` without the connector's secret: an HTTP library may quote a header it refused.
    With `sent`, the request's headers, also without the credential of its Authorization header
    (a Basic pair is the secret base64-encoded, which a plain search for the secret misses)."""
    try:
        secret = delivery.connector.secret.reveal() if delivery.connector.secret else ""
    except ValueError:
        secret = ""
    credentials = [secret] if secret else []
    for name, value in (sent or {}).items():
        if name.lower() == "authorization" and value:
            credentials.append(value.split(" ", 1)[-1])
    for credential in sorted(credentials, key=len, reverse=True):
        message = message.replace(credential, "********")
    return message


def _remember_attempt(delivery: Delivery, code, excerpt: str, error: str) -> None:
    """Keep this attempt in the delivery's history (the row itself keeps only the latest outcome)."""
    DeliveryAttempt.objects.create(
        delivery=delivery,
        round=delivery.redeliveries,
        number=delivery.attempts,
        sent_at=delivery.last_attempt_at or timezone.now(),
        response_code=code,
        error=error[:500],
        response_excerpt=excerpt[:500],
    )


def _record(delivery: Delivery, code, excerpt: str, error: str, retry_after) -> None:
    """Write what the request's one try came to. The request went out: an outcome lost to a
    database that refuses the write for a moment (a full disk, a lock, a restart) would leave the
    claim for `send_due` to hand back, and the receiver would get the delivery twice. So the write
    is tried again each second, for up to twice the outbound timeout (the claim is handed back
    after three), before giving up."""
    deadline = time.monotonic() + 2 * settings.READINESS_OUTBOUND_TIMEOUT_SECONDS
    while True:
        nested = connection.in_atomic_block  # a caller's transaction cannot be retried from in here
        try:
            with transaction.atomic():
                _write_outcome(delivery, code, excerpt, error, retry_after)
            return
        except DatabaseError:
            if nested or time.monotonic() >= deadline:
                raise
            logger.warning("delivery %s: its outcome could not be written yet; trying again", delivery.pk)
            connection.close_if_unusable_or_obsolete()
            time.sleep(1)


def _write_outcome(delivery: Delivery, code, excerpt: str, error: str, retry_after) -> None:
    _remember_attempt(delivery, code, excerpt, error)
    outcome = retry.classify(code)
    delivery.response_code, delivery.response_excerpt, delivery.error = code, excerpt, error[:500]
    if outcome == retry.SUCCESS:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            DeliveryStatus.SUCCEEDED,
            timezone.now(),
            None,
        )
    elif outcome == retry.GIVE_UP:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    elif delivery.attempts >= settings.READINESS_DELIVERY_MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.DEAD, None
    else:
        delay = retry.next_delay(
            delivery.attempts, retry_after=retry_after, base_s=settings.READINESS_DELIVERY_BACKOFF_BASE_S
        )
        delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, timezone.now() + timedelta(seconds=delay)
    delivery.save()


def send_due(limit: int = 100) -> int:
    """Attempt every pending delivery whose time has come (beat calls this); hand back stuck claims."""
    now = timezone.now()
    stuck = now - timedelta(seconds=settings.READINESS_OUTBOUND_TIMEOUT_SECONDS * 3)
    # A worker killed mid-send leaves its claim, whose attempt was counted: after three timeouts it
    # is due again, or dead when that was its last attempt.
    abandoned = Delivery.objects.filter(status=DeliveryStatus.SENDING, last_attempt_at__lt=stuck)
    lost = "no outcome: the worker sending it stopped"
    abandoned.filter(attempts__gte=settings.READINESS_DELIVERY_MAX_ATTEMPTS).update(
        status=DeliveryStatus.DEAD, next_attempt_at=None, error=lost
    )
    abandoned.update(status=DeliveryStatus.PENDING, next_attempt_at=now, error=lost)
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at")
    return sum(1 for pk in due.values_list("pk", flat=True)[:limit] if attempt(pk))


@transaction.atomic
def redeliver(*, access: Access, delivery: Delivery) -> Delivery:
    """Send again now (same webhook-id), with a fresh set of attempts; the earlier attempts stay in
    the delivery's history, under the previous round."""
    org_id = delivery.connector.organization_id
    require_writer(access, org_id)
    if delivery.status == DeliveryStatus.SENDING:
        raise ApplicationError("The delivery is being sent right now.", code="conflict", status=409)
    before = delivery.status
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), redeliveries=F("redeliveries") + 1
    )
    delivery.refresh_from_db()
    audit_record(
        access=access,
        organization_id=org_id,
        action="delivery.redeliver",
        obj=delivery,
        changes={"status": [before, DeliveryStatus.PENDING]},
    )
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def send_test(*, access: Access, connector: Connector) -> Delivery:
    """A `test` delivery sent now, in this request, so the page can show the answer."""
    _require_admin(access, connector.organization_id)
    data = {"message": "Test delivery from readiness", "connector": connector.name}  # tickets: a read of the API
    payload = event_payload(Event.TEST, organization=connector.organization, data=data)
    with transaction.atomic():
        delivery = Delivery.objects.create(
            connector=connector,
            event=Event.TEST,
            event_id=f"msg_{uuid.uuid4().hex}",
            payload=payload,
            next_attempt_at=timezone.now(),
        )
        audit_record(access=access, organization_id=connector.organization_id, action="connector.test", obj=connector)
    return attempt(delivery.pk) or delivery
