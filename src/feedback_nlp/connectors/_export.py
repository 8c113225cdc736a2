"""The result of reading a vendor export: raw canonical rows plus what was skipped on purpose."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Export:
    """Raw rows of an export (canonical column names, ``_row`` numbering them) and counts of what was
    left out because it is not feedback (``{"bot message": 3, "channel join": 5}``)."""

    frame: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[dict], skipped: dict[str, int] | None = None) -> Export:
        """The export of ``rows`` (dicts with ``_row`` and, for broken records, ``_error``/``_raw``): values kept
        as objects (ids as written), ``_row`` as int64, the error columns dropped when no record is broken."""
        return cls(rows_frame(list(rows)), dict(skipped or {}))


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Raw rows as a frame: values kept as objects (ids as written), ``_row`` as int64, the error columns
    dropped when no record is broken."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["_row", "id", "text", "source"])
    frame = frame.astype({c: object for c in frame.columns if c != "_row"})
    frame["_row"] = frame["_row"].astype("int64")
    if "_error" in frame and frame["_error"].isna().all():
        frame = frame.drop(columns=["_error", "_raw"])
    return frame


def row_chunks(rows: Iterable[dict], chunk_size: int) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_size`` raw rows, built as the rows come (memory: one chunk, not the export);
    an export without rows gives one empty frame, as a table reader does."""
    chunk: list[dict] = []
    sent = False
    for row in rows:
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield rows_frame(chunk)
            chunk, sent = [], True
    if chunk or not sent:
        yield rows_frame(chunk)


def redacted_note(value: Any) -> str | None:
    """A customer's note beside a record (a rating's comment or remark) as text with personal data redacted, as a
    record's text is; None when there is none.

    >>> redacted_note("  slow, write to jo@example.com "), redacted_note("  "), redacted_note(5)
    ('slow, write to <EMAIL>', None, None)
    """
    from ..cleaning import redact_pii

    return redact_pii(value.strip()) if isinstance(value, str) and value.strip() else None


def title_and_body(title: Any, body: Any) -> Any:
    """The text of an item with a title and a body (a review, an issue): both joined by a blank line, the body
    alone when it repeats the title, None when both are empty. A title or body that is a JSON object or list is
    returned as it is, so that the validator rejects it (``text is dict``) instead of reading ``"{'a': 1}"``."""
    for value in (title, body):
        if isinstance(value, (dict, list)):
            return value
    title = "" if title is None or (isinstance(title, float) and title != title) else str(title).strip()
    body = "" if body is None or (isinstance(body, float) and body != body) else str(body).strip()
    if not title and not body:
        return None
    if not title or body.lower().startswith(title.lower()):
        return body
    return f"{title}\n\n{body}" if body else title


def unpaged(items: Iterable[tuple[int, Any, str | None, str | None]], key: str,
            ) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The records of an export whose pages were saved as a list or one per line (``[{"tickets": [...]}, ...]``):
    each page's ``key`` list in order; other items as they are. Numbers stay unique and increasing: an item keeps
    its own (line or position) unless a page's records went past it. A page was read as one record with no id
    ("missing id"), or as a conversation without messages, and every record in it was lost."""
    last = 0
    for number, value, error, raw in items:
        page = value.get(key) if error is None and isinstance(value, dict) and "id" not in value else None
        for record in page if isinstance(page, list) else [value]:
            last = max(last + 1, number)
            yield (last, record, None, None) if isinstance(page, list) else (last, value, error, raw)
