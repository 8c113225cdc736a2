"""``quackback pull``: every post of a portal into feedback_nlp's record schema.

One row per post: ``id``, ``text`` (title, a blank line, content), ``source`` (the board's slug),
``created_at``, ``votes``, ``tags`` (names), ``status`` (name) and ``status_stage`` (see :func:`status_stage`),
plus provenance (``board``, which survives a reader mapping ``source`` onto its channel list, ``board_id``,
``tag_ids``, ``status_id``, ``comments``, ``author``, ``canonical_post_id``, ``updated_at``). Deleted posts are left out and counted.

Example:
    >>> posts_to_records([{"id": "post_1", "title": "Dark mode", "content": "Please.", "boardSlug": "ideas",
    ...     "createdAt": "2026-01-02T03:04:05Z", "voteCount": 3, "tags": [{"id": "t1", "name": "ui"}]}])[
    ...     ["id", "text", "source", "votes", "tags"]].to_dict("records")
    [{'id': 'post_1', 'text': 'Dark mode\\n\\nPlease.', 'source': 'ideas', 'votes': 3, 'tags': ['ui']}]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ...errors import quoted
from ._client import DEFAULT_MAX_POSTS, QuackbackClient
from ._errors import QuackbackAPIError, QuackbackError
from ._status import status_stage

__all__ = ["PullResult", "post_text", "posts_to_records", "pull_posts"]

logger = logging.getLogger(__name__)

RECORD_COLUMNS = ("id", "text", "source", "created_at", "votes", "tags", "status", "status_stage", "board", "board_id",
                  "tag_ids", "status_id", "comments", "author", "canonical_post_id", "updated_at")


@dataclass
class PullResult:
    """What :func:`pull_posts` fetched: ``records`` in the record schema, the deleted posts skipped, the
    entries that were not posts at all, and the posts that came again on a later page (kept once)."""

    records: pd.DataFrame
    skipped_deleted: int
    requests: int
    skipped_malformed: int = 0
    skipped_repeated: int = 0
    #: ``(first, last)`` of the portal's post count (``meta.pagination.total``) when it changed during the pull:
    #: Quackback's cursor is an offset, so a post deleted meanwhile shifts the later pages and one post may have
    #: been skipped without a sign. None when the count held (or the portal gives none).
    total_changed: tuple[int, int] | None = None
    #: posts the portal returned outside the ``boardId``/``dateFrom``/``dateTo`` asked for, left out: Quackback
    #: ignores a board id it does not recognise and (in the versions read) the date filters altogether.
    skipped_filtered: int = 0


def post_text(title: object, content: object) -> str:
    """The text feedback_nlp reads for a post: the title, a blank line, then the content."""
    parts = [str(p).strip() for p in (title, content) if isinstance(p, str) and p.strip()]
    return "\n\n".join(parts)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> int:
    """A count (votes, comments): a non-negative integer, else 0 (1.7, "abc", NaN, true and {} are no counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def posts_to_records(posts: Iterable[Mapping[str, Any]],
                     statuses: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Quackback post objects to record rows; ``statuses`` maps status ids to ``{name, category}``."""
    statuses = statuses or {}
    rows = []
    for p in posts:
        # Fields of the wrong type (a server bug, a proxy's error page): left empty, never a crash halfway
        # through a portal ("abc" votes, a list as status id) or a made-up value (a tag named "None").
        raw_tags = p.get("tags")
        tags = [t for t in raw_tags if isinstance(t, Mapping)] if isinstance(raw_tags, list) else []
        status_id = _str(p.get("statusId"))
        info = statuses.get(status_id, {}) if status_id else {}
        name = _str(info.get("name")) or _str(p.get("status")) or status_id
        board = _str(p.get("boardSlug")) or _str(p.get("boardName"))
        rows.append({
            "id": str(p["id"]),
            "text": post_text(p.get("title"), p.get("content")),
            "source": board or _str(p.get("boardId")) or "other",
            "created_at": _str(p.get("createdAt")),  # ISO text; a bare number was read as nanoseconds in 1970
            "votes": _number(p.get("voteCount")),
            "tags": [t["name"] for t in tags if _str(t.get("name"))],
            "status": name,
            "status_stage": status_stage(name, _str(info.get("category"))),
            "board": board,
            "board_id": _str(p.get("boardId")),
            "tag_ids": [str(t["id"]) for t in tags if isinstance(t.get("id"), (str, int)) and t.get("id") != ""],
            "status_id": status_id,
            "comments": _number(p.get("commentCount")),
            "author": _str(p.get("authorName")),
            "canonical_post_id": _str(p.get("canonicalPostId")),
            "updated_at": _str(p.get("updatedAt")),
        })
    out = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    for col in ("created_at", "updated_at"):
        out[col] = pd.to_datetime(out[col], utc=True, errors="coerce", format="mixed")
    return out


def _instant(value: Any) -> pd.Timestamp | None:
    """An ISO time (a date alone is its midnight) in UTC, or None when it is none."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        t = pd.Timestamp(value.strip())
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(t):
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _filter_check(filters: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a post lies outside the ``boardId``/``dateFrom``/``dateTo`` asked for. Quackback ignores a board id
    that is not one (a slug given for the id: every board came back, as if it were the one asked for) and, in the
    versions read, the date filters altogether (``--since`` pulled every post), so they are applied here too."""
    board = filters.get("boardId")
    bounds = {}
    for key in ("dateFrom", "dateTo"):
        if filters.get(key) is not None:
            bounds[key] = _instant(filters[key])
            if bounds[key] is None:
                raise QuackbackError(f"{key} must be an ISO date or time (2026-01-31, 2026-01-31T12:00:00Z), got "
                                     f"{quoted(filters[key])}")
    start, end = bounds.get("dateFrom"), bounds.get("dateTo")

    def outside(post: Mapping[str, Any]) -> bool:
        if board is not None and isinstance(post.get("boardId"), str) and board not in (post["boardId"],
                                                                                          post.get("boardSlug")):
            return True  # the board's slug, given for its id, keeps that board's posts
        if start is None and end is None:
            return False
        created = _instant(post.get("createdAt"))
        return created is not None and ((start is not None and created < start) or (end is not None and created > end))

    return outside


def pull_posts(client: QuackbackClient, *, limit: int = 100, max_posts: int | None = DEFAULT_MAX_POSTS,
               **filters: Any) -> PullResult:
    """Page through ``GET /posts`` (``limit`` per page) and return the posts as records.

    A portal still announcing more posts after ``max_posts`` distinct ones (default a million; None: no bound)
    fails the pull with :class:`QuackbackAPIError` rather than being paged (and held in memory) without end.

    Status names come from ``GET /statuses`` when the key may read them; otherwise the status id is kept.
    """
    outside = _filter_check(filters)
    try:
        # a list as id failed the pull with "unhashable type"
        statuses = {s["id"]: s for s in client.list_statuses() if isinstance(s, Mapping) and _str(s.get("id"))}
    except QuackbackAPIError as exc:
        if exc.retryable:
            raise
        logger.warning("could not read Quackback statuses (%s); status ids are kept as they are", exc)
        statuses = {}
    posts, deleted, malformed, repeated, filtered = [], 0, 0, 0, 0
    seen: set[str] = set()
    totals: list[int] = []

    def count(pagination: Mapping[str, Any]) -> None:
        total = pagination.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            totals.append(total)

    for post in client.iter_posts(limit=limit, max_posts=max_posts, on_page=count, **filters):
        if not isinstance(post, Mapping) or not isinstance(post.get("id"), str) or not post["id"]:
            malformed += 1  # counted and reported, never a crash halfway through a portal
            continue
        if post["id"] in seen:  # a page served twice (under another cursor) gave each of its posts two rows
            repeated += 1
            continue
        seen.add(post["id"])
        if post.get("deletedAt"):
            deleted += 1
            continue
        if outside(post):
            filtered += 1
            continue
        posts.append(post)
    if malformed:
        logger.warning("%d entries of GET /posts were not posts with an id; left out", malformed)
    if repeated:
        logger.warning("%d posts of GET /posts came again on a later page; each is kept once (its first copy)", repeated)
    if filtered:
        logger.warning("%d posts of GET /posts lie outside the board or dates asked for (the portal ignored the "
                       "filter); left out", filtered)
    changed = (totals[0], totals[-1]) if totals and any(t != totals[0] for t in totals) else None
    if changed:
        logger.warning("the portal's post count went from %d to %d during the pull: posts deleted meanwhile shift "
                       "Quackback's pages (its cursor is an offset), so a post may be missing; pull again to be sure",
                       *changed)
    return PullResult(posts_to_records(posts, statuses), deleted, client.requests_made, malformed, repeated, changed,
                      filtered)
