"""Sections that a higher app adds to a lower app's page, without the lower app importing it.

A page sends its slot's signal (`project_readiness`) with the project and the reader's access; an
app that has something to show there connects a receiver at start-up that returns a `Panel` (its
template and that template's context) or None. So the readiness page of the reports app shows the
tickets that the integrations app tracks, and reports does not import integrations
(docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.dispatch import Signal


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict = field(default_factory=dict)


# Sent with `project=` and `access=` (what the reader may see) when the readiness page is drawn.
project_readiness = Signal()


def panels(slot: Signal, **kwargs) -> list[Panel]:
    """The panels the connected apps add to `slot`, in the order they connected; none is fine."""
    return [panel for _receiver, panel in slot.send(sender=None, **kwargs) if panel is not None]
