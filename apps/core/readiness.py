"""The "readiness changed" signal: how the apps that own evidence ask for a project's decision to be
re-evaluated without importing the app that decides.

Checklists, probes, costs, sign-offs and projects call `readiness_changed(project)` after any change
that can move a decision; the reports app, which decides, connects a receiver at start-up that
queues one deduplicated re-evaluation once the writer's transaction commits. So evidence never
depends on the decision, and imports flow one way (docs/architecture.md).
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `project=`; receivers run in the sender's transaction.
changed = Signal()


def readiness_changed(project) -> None:
    """Something that feeds `project`'s decision changed. With no receiver (an app loaded without
    reports) nothing happens: the periodic refresh still catches up."""
    changed.send(sender=type(project), project=project)
