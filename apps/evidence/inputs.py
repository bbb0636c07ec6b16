"""A project's evidence as plain values (no Django): its checklist items with their waivers, the
verdict of each probe plan's latest run and its cost position.

The decision (apps/reports/decision.py) reads it with the gates; a sign-off fingerprints the part of
it that its function owns (apps/signoffs/material.py). Both read the same values, gathered once by
`apps.evidence.collect.project_evidence`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Waiver:
    expires_on: date
    revoked: bool = False
    approved: bool = True  # a requested waiver counts only once someone else approved it

    def valid_on(self, today: date) -> bool:
        return self.approved and not self.revoked and today <= self.expires_on


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    category: str
    severity: str
    status: str
    waiver: Waiver | None = None
    url: str = ""
    function: str = ""  # who owns it: its gate's approvals depend on it


@dataclass(frozen=True)
class Probe:
    plan: str
    finished_on: date | None
    slo_met: bool | None
    missed: tuple[str, ...] = ()
    url: str = ""
    not_evidence: str = ""  # why the run proves nothing (its verdict's label); empty for evidence


@dataclass(frozen=True)
class Cost:
    projected_monthly_usd: float | None
    budget_usd: float | None
    url: str = ""


@dataclass(frozen=True)
class Evidence:
    today: date
    items: tuple[Item, ...] = ()
    probes: tuple[Probe, ...] = ()
    cost: Cost | None = None
