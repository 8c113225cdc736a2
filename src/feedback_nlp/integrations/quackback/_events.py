"""Quackback webhook events: ``{"id", "type", "createdAt", "data": {...}}`` parsed and checked.

Example:
    >>> e = parse_event(b'{"id": "evt_1", "type": "post.created", "createdAt": "2026-01-01T00:00:00Z",'
    ...                 b' "data": {"post": {"id": "post_1", "title": "Dark mode", "content": "please"}}}')
    >>> e.type, e.post_id, e.text
    ('post.created', 'post_1', 'Dark mode\\n\\nplease')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ...connectors._tables import RepeatedKeyError, unique_keys
from ...errors import quoted
from ._errors import EventError
from ._pull import post_text

__all__ = ["POST_EVENTS", "WebhookEvent", "parse_event"]

POST_EVENTS = ("post.created", "post.updated", "post.status_changed", "post.deleted", "post.merged",
               "post.voted", "comment.created")
MAX_ID_CHARS = 200
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # NUL, newlines…: no Quackback id holds one (PostgreSQL refuses NUL)


@dataclass(frozen=True)
class WebhookEvent:
    """One delivery's event. ``id`` is stable across Quackback's retries; it is the idempotency key."""

    id: str
    type: str
    created_at: str | None
    data: dict[str, Any]

    @property
    def post(self) -> dict[str, Any]:
        post = self.data.get("post")
        return post if isinstance(post, dict) else {}

    @property
    def post_id(self) -> str | None:
        value = self.post.get("id")
        return value if isinstance(value, str) and value else None

    @property
    def text(self) -> str:
        return post_text(self.post.get("title"), self.post.get("content"))


def parse_event(body: bytes) -> WebhookEvent:
    """Parse a (verified) delivery body; raise :class:`EventError` if it is not a Quackback event."""
    try:
        doc = json.loads(body, object_pairs_hook=unique_keys)
    except RepeatedKeyError as exc:  # json keeps the last value silently: which text or id was meant is unknown
        raise EventError(f"the webhook body names the key {quoted(exc.key)} twice in one object") from None
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise EventError("the webhook body is not JSON") from None
    if not isinstance(doc, dict):
        raise EventError("the webhook body is not a JSON object")
    try:  # "\ud800" is valid JSON but no text: storing it failed with a 500, which Quackback retries for ever
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise EventError("the webhook body holds a lone surrogate (\\udXXX): not valid Unicode text") from None
    except RecursionError:
        raise EventError("the webhook body is nested too deeply") from None
    event_id, event_type, data = doc.get("id"), doc.get("type"), doc.get("data", {})
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID_CHARS or _CONTROL.search(event_id):
        raise EventError("the event has no usable 'id'")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100 or _CONTROL.search(event_type):
        raise EventError("the event has no usable 'type'")
    if not isinstance(data, dict):
        raise EventError("the event's 'data' is not an object")
    created = doc.get("createdAt", doc.get("timestamp"))
    if event_type == "post.merged" and "post" not in data and isinstance(data.get("duplicatePost"), dict):
        # Quackback's post.merged names the merged post `duplicatePost` (beside `canonicalPost`), not `post`:
        # such a delivery was refused with a 400, which Quackback does not retry, so no merge was ever recorded
        data = {**data, "post": data["duplicatePost"]}
    if event_type.startswith("post.") or event_type == "comment.created":
        post_id = data.get("post", {}).get("id") if isinstance(data.get("post"), dict) else None
        if not isinstance(post_id, str) or not post_id or len(post_id) > MAX_ID_CHARS or _CONTROL.search(post_id):
            raise EventError(f"a {event_type} event needs data.post.id (text without control characters)")
    return WebhookEvent(event_id, event_type, created if isinstance(created, str) else None, data)
