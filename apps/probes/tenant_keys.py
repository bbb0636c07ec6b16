"""A noisy-neighbour plan's tenant keys: stored encrypted with the URL they were given for, and
read back only for a run whose URL has that origin (a moved endpoint does not take them along)."""

from __future__ import annotations

import json

from apps.net.netguard import same_origin
from apps.probes import plans
from apps.probes.models import ProbePlan


def set_tenant_keys(plan: ProbePlan, keys) -> dict | None:
    """Store a noisy-neighbour plan's tenant keys (None keeps them; an empty mapping removes them)
    with the origin they were given for: a run sends them to that origin only, so moving the
    endpoint elsewhere cannot carry them to another server. Returns the audit change (names only)."""
    if keys is None:
        return None
    before = sorted(stored_tenant_keys(plan))
    parsed = plans.parse_tenant_keys(keys) if keys else {}
    plan.tenant_keys = json.dumps({"url": plan.endpoint.base_url, "keys": parsed}) if parsed else None
    return {"tenant_keys": [before, sorted(parsed)]}


def stored_tenant_keys(plan: ProbePlan, *, for_url: str | None = None) -> dict[str, str]:
    """The plan's tenant keys; with `for_url`, only when they were given for that URL's origin."""
    if not plan.tenant_keys:
        return {}
    value = plan.tenant_keys  # an EncryptedSecret once read back, the plain text just after a change
    stored = json.loads(value if isinstance(value, str) else value.reveal())
    if for_url is not None and not same_origin(for_url, stored.get("url") or ""):
        return {}
    return stored.get("keys") or {}
