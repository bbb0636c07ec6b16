"""Jira Cloud, ServiceNow and GitHub Issues: the HTTP requests that keep one ticket per finding.

Pure Python: given the action (create, comment, close, reopen), the connector's settings and the
finding, build the exact requests. `action_for` decides the action from the event and the state
of the finding's ticket; the integrations service sends the requests one per attempt (a close on
GitHub is a comment, then a PATCH) and records the ticket from the create response.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

CREATE, COMMENT, CLOSE, REOPEN, NOTHING = "create", "comment", "close", "reopen", "nothing"

# Events that say a finding is (still) a problem, and those that say it is resolved.
OPENING = {
    "item.blocker_failed",
    "signoff.rejected",
    "signoff.stale",
    "probe.failed",
    "probe.slo_missed",
    "probe.regressed",
    "waiver.expired",
    "waiver.expiring",
}
RESOLVING = {"item.blocker_passed"}


@dataclass(frozen=True)
class Finding:
    event: str
    title: str  # one line: the ticket's summary
    text: str  # the body: what happened, with a link back
    labels: tuple[str, ...] = ("readiness",)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # appended to the connector's base URL
    json: dict | None = None


def action_for(event: str, data: dict, ticket_state: str | None) -> str:
    """ticket_state: None (no ticket yet), "open" or "closed"."""
    if event == "decision.changed":
        opening, resolving = data.get("to") == "NO-GO", data.get("to") == "GO"
    else:
        opening, resolving = event in OPENING, event in RESOLVING
    if opening:
        return {None: CREATE, "open": COMMENT, "closed": REOPEN}[ticket_state]
    if resolving:
        return CLOSE if ticket_state == "open" else NOTHING
    return COMMENT if ticket_state == "open" else NOTHING


def finding_from_payload(payload: dict) -> Finding:
    """Summary and body of a ticket from an event payload (see services.event_payload)."""
    data, project = payload.get("data", {}), payload.get("project") or {}
    what = data.get("title") or data.get("plan") or data.get("function") or data.get("item") or ""
    label = {
        "decision.changed": f"decision {data.get('from')} → {data.get('to')}",
        "item.blocker_failed": "blocker failed",
        "item.blocker_passed": "blocker passes again",
        "signoff.stale": "approval stale",
        "signoff.rejected": "gate rejected",
        "waiver.expiring": "waiver expiring",
        "waiver.expired": "waiver expired",
        "probe.failed": "probe run failed",
        "probe.slo_missed": "SLO missed",
        "probe.regressed": "probe regressed",
    }.get(payload.get("type", ""), payload.get("type", "event"))
    title = f"[readiness] {project.get('name', payload.get('organization', ''))}: {label}" + (
        f": {what}" if what else ""
    )
    lines = [label[:1].upper() + label[1:] + (f": {what}" if what else "") + "."]
    for key, value in data.items():
        if key not in ("title",) and value not in (None, "", [], {}):
            lines.append(f"{key}: {value}")
    if project.get("url"):
        lines.append(f"Readiness: {project['url']}")
    return Finding(payload.get("type", ""), title[:250], "\n".join(lines)[:30000])


# --- Jira Cloud (REST v3, Atlassian Document Format) -----------------------------------------------


def adf(text: str) -> dict:
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.splitlines() if line
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def jira(action: str, config: dict, key: str | None, finding: Finding) -> list[Request]:
    if action == CREATE:
        fields = {
            "project": {"key": config["project_key"]},
            "summary": finding.title,
            "issuetype": {"name": config.get("issue_type") or "Task"},
            "description": adf(finding.text),
            "labels": list(finding.labels),
        }
        return [Request("POST", "/rest/api/3/issue", {"fields": fields})]
    if action == COMMENT:
        return [Request("POST", f"/rest/api/3/issue/{key}/comment", {"body": adf(finding.text)})]
    transition = config.get("done_transition_id", "31") if action == CLOSE else config.get("reopen_transition_id", "11")
    body = {"transition": {"id": str(transition)}, "update": {"comment": [{"add": {"body": adf(finding.text)}}]}}
    return [Request("POST", f"/rest/api/3/issue/{key}/transitions", body)]


def jira_auth(config: dict, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{config['email']}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}", "Accept": "application/json"}


# --- ServiceNow (Table API) ------------------------------------------------------------------------


def servicenow(action: str, config: dict, sys_id: str | None, finding: Finding) -> list[Request]:
    table = config.get("table") or "incident"
    if action == CREATE:
        body = {"short_description": finding.title, "description": finding.text, "category": "readiness"}
        if config.get("assignment_group"):
            body["assignment_group"] = config["assignment_group"]
        return [Request("POST", f"/api/now/table/{table}", body)]
    path = f"/api/now/table/{table}/{sys_id}"
    if action == COMMENT:
        return [Request("PATCH", path, {"work_notes": finding.text})]
    if action == CLOSE:
        state = str(config.get("closed_state", "6"))  # 6 = Resolved for incidents
        return [
            Request("PATCH", path, {"state": state, "close_code": "Solved (Permanently)", "close_notes": finding.text})
        ]
    return [Request("PATCH", path, {"state": str(config.get("reopen_state", "2")), "work_notes": finding.text})]


def servicenow_auth(config: dict, secret: str) -> dict[str, str]:
    if config.get("auth") == "bearer":
        return {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    pair = base64.b64encode(f"{config.get('username', '')}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}", "Accept": "application/json"}


# --- GitHub Issues ---------------------------------------------------------------------------------


def github(action: str, config: dict, number: str | None, finding: Finding) -> list[Request]:
    repo = config["repo"]
    if action == CREATE:
        return [
            Request(
                "POST",
                f"/repos/{repo}/issues",
                {"title": finding.title, "body": finding.text, "labels": list(finding.labels)},
            )
        ]
    comment = Request("POST", f"/repos/{repo}/issues/{number}/comments", {"body": finding.text})
    if action == COMMENT:
        return [comment]
    if action == CLOSE:
        return [
            comment,
            Request("PATCH", f"/repos/{repo}/issues/{number}", {"state": "closed", "state_reason": "completed"}),
        ]
    return [Request("PATCH", f"/repos/{repo}/issues/{number}", {"state": "open"}), comment]


def github_auth(config: dict, secret: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {secret}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }


BUILDERS = {"jira": (jira, jira_auth), "servicenow": (servicenow, servicenow_auth), "github": (github, github_auth)}
# What a "send test" reads to check the credentials without creating anything.
TEST_PATHS = {
    "jira": lambda c: "/rest/api/3/myself",
    "servicenow": lambda c: f"/api/now/table/{c.get('table') or 'incident'}?sysparm_limit=1",
    "github": lambda c: f"/repos/{c['repo']}",
}


def ticket_from_response(kind: str, base_url: str, body: dict, config: dict | None = None) -> tuple[str, str]:
    """(external key, URL) of a ticket from a create response. The URL is "" unless it is a link
    safe to render (see `link_url`): the ticket is then kept by its key alone. A ServiceNow
    ticket opens in the connector's table (incident unless configured otherwise)."""
    if kind == "jira":
        return body["key"], link_url(f"{base_url.rstrip('/')}/browse/{body['key']}")
    if kind == "servicenow":
        result = body["result"]
        table = quote((config or {}).get("table") or "incident", safe="")
        url = f"{base_url.rstrip('/')}/nav_to.do?uri={table}.do?sys_id={quote(str(result['sys_id']), safe='')}"
        return result["sys_id"], link_url(url)
    return str(body["number"]), link_url(body.get("html_url"))


# TicketLink.url's column: a longer URL cut short would point somewhere else.
LINK_MAX_LENGTH = 500


def link_url(value: object) -> str:
    """`value` if it is an absolute http(s) URL with a host, else "".

    The ticketing server chooses GitHub's `html_url` (and the key inside Jira's and ServiceNow's),
    and pages render it as a link: a `javascript:` or `data:` URL there would run in our origin
    when clicked. Whitespace and control characters are refused too, since browsers strip them
    before reading the scheme ("java\tscript:").
    """
    if not isinstance(value, str) or not value or len(value) > LINK_MAX_LENGTH:
        return ""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return ""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:  # an unbalanced IPv6 bracket, a bad port
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    return value
