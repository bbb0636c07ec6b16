"""The "readiness changed" event: how the apps that own evidence ask for a project's decision to be
re-evaluated without importing the app that decides.

Checklists, probes, costs, sign-offs and projects call `readiness_changed(project)` after any change
that can move a decision; the reports app, which decides, subscribes once at start-up. So evidence
never depends on the decision, and imports flow one way (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable

_subscribers: list[Callable[[object], object]] = []


def subscribe(handler: Callable[[object], object]) -> None:
    """Called by the deciding app's AppConfig.ready(); subscribing twice is a no-op."""
    if handler not in _subscribers:
        _subscribers.append(handler)


def readiness_changed(project) -> None:
    """Something that feeds `project`'s decision changed. With no subscriber (an app loaded
    without reports) nothing happens: the periodic refresh still catches up."""
    for handler in _subscribers:
        handler(project)
