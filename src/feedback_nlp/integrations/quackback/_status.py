"""Quackback statuses mapped onto five stages a leadership report can compare across tools.

Quackback lets each team name its statuses; each also has a category (``active``, ``complete``, ``closed``).
A ``complete`` or ``closed`` category decides; otherwise the name (or slug) does, so ``Planned`` and
``In Progress`` — both active — stay apart, and an unknown active name counts as open. ``closed`` means
declined, as in Quackback; where it means resolved (a help desk), give a ``status_stage`` column instead.

Example:
    >>> [status_stage(s) for s in ["Under Review", "planned", "In Progress", "Complete", "Closed"]]
    ['open', 'planned', 'in_progress', 'shipped', 'declined']
    >>> status_stage("Beta", category="complete")
    'shipped'
"""

from __future__ import annotations

import re

__all__ = ["STAGES", "status_stage"]

STAGES = ("open", "planned", "in_progress", "shipped", "declined")

_BY_NAME = {
    "open": "open", "new": "open", "under_review": "open", "in_review": "open", "reviewing": "open",
    "needs_review": "open", "triage": "open", "considering": "open", "backlog": "open", "pending": "open",
    "hold": "open", "on_hold": "open", "snoozed": "open", "waiting": "open",
    "planned": "planned", "next": "planned", "later": "planned", "scheduled": "planned", "accepted": "planned",
    "roadmap": "planned", "on_roadmap": "planned",
    "in_progress": "in_progress", "started": "in_progress", "building": "in_progress", "in_development": "in_progress",
    "doing": "in_progress", "beta": "in_progress", "testing": "in_progress", "now": "in_progress",
    "complete": "shipped", "completed": "shipped", "done": "shipped", "shipped": "shipped", "released": "shipped",
    "live": "shipped", "launched": "shipped", "resolved": "shipped", "solved": "shipped", "fixed": "shipped",
    "closed": "declined", "declined": "declined", "rejected": "declined", "wont_do": "declined", "won_t_do": "declined",
    "wontfix": "declined", "not_planned": "declined", "duplicate": "declined", "archived": "declined",
}
_BY_CATEGORY = {"complete": "shipped", "closed": "declined"}


def status_stage(name: object, category: str | None = None) -> str | None:
    """The stage of a status name or slug (``None`` for a missing one; unknown active names are ``open``)."""
    if name is None or (isinstance(name, float) and name != name):
        return None
    key = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    if not key:
        return None
    if category in ("complete", "closed"):
        return _BY_CATEGORY[category]
    return _BY_NAME.get(key, "open")
