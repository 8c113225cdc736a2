"""Intercom conversations: the Conversations API / export JSON (``{"type": "conversation.list",
"conversations": [...]}``, a list of conversations, one conversation, or one conversation per line).

A conversation opens with its ``source`` message (``conversation_message`` in API 1.x exports) and continues in ``conversation_parts``; each part has
a ``part_type`` (``comment``, ``note``, ``assignment``, ``close``…), an HTML ``body`` and an ``author``
whose ``type`` is ``user``/``lead``/``contact`` (the customer), ``admin``, ``bot`` or ``team``. The
customer's messages are the feedback: one row each. Agents' replies, internal notes, bot messages,
workflow events, ratings and attachments sent without a word are skipped and counted.

Example:
    >>> export = read_intercom("tests/fixtures/ingest/intercom_conversations.json")
    >>> export.frame[["id", "conversation_id", "author"]].iloc[0].tolist()
    ['403918320', '1911149811', 'Jane Doe']
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from ..cleaning import redact_pii
from ..errors import InputFileError
from ._export import Export, redacted_note, unpaged
from ._json import JsonFile
from ._tables import _check_file, iter_json_lines, sniff_table_format

__all__ = ["iter_intercom", "read_intercom"]

_CUSTOMER = {"user", "lead", "contact"}
_EMPTY_HTML = re.compile(r"<[^>]*>|&nbsp;|\s")  # "<p></p>", "<p><br></p>": a body with no word in it
_SKIPPED = {"admin": "agent reply", "bot": "bot message", "team": "agent reply", "operator": "bot message"}


def _conversations(path: Path, encoding: str | None) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """(number, conversation, reason it is rejected, its text) per conversation, one at a time."""
    if sniff_table_format(path) == "jsonl":
        yield from iter_json_lines(path, encoding)
        return
    doc = JsonFile(path, encoding)
    kind = doc.kind()
    if kind == "array":
        yield from doc.items()
        return
    keys = doc.keys() if kind == "object" else {}
    if keys.get("type") == "conversation":  # one conversation
        yield 1, doc.load(), None, None
        return
    key = "conversations" if "conversations" in keys else "data"
    if kind != "object" or key not in doc.arrays():
        raise InputFileError(f"{path} is not an Intercom conversations export: expected "
                             "{\"conversations\": [...]}, a list of conversations or one per line")
    yield from doc.items(key)


def _author(part: dict[str, Any]) -> tuple[str, Any]:
    author: dict[str, Any] = part["author"] if isinstance(part.get("author"), dict) else {}
    return str(author.get("type") or ""), author.get("name") or author.get("id")


def _without_text(part: dict[str, Any]) -> str | None:
    """Why a customer's part without a body is no feedback: a rating given (its score is on the conversation) or
    files sent without a word, as Slack's "file without text"; None for a part with a body, or without one for no
    such reason (the validator rejects it as "missing text")."""
    body = part.get("body")
    if body is not None and not (isinstance(body, str) and not _EMPTY_HTML.sub("", body)):
        return None
    if part.get("part_type") == "conversation_rating_changed":
        return "rating without text"
    return "attachment without text" if part.get("attachments") else None


def _customer_row(part: dict[str, Any], name: Any, conv: dict[str, Any], source: dict[str, Any],
                  opening: dict[str, Any] | None, tags: list[Any], number: int, rated: bool) -> dict[str, Any]:
    first = part is opening
    # the conversation's rating, on its first customer row (``rated``: an earlier row has it)
    rating: dict[str, Any] = conv["conversation_rating"] if isinstance(conv.get("conversation_rating"), dict) \
        and not rated else {}
    return {
        "_row": number, "_error": None, "_raw": None,
        "id": part.get("id"), "text": part.get("body"), "source": "support",
        "source_detail": "intercom" + (f"/{source.get('delivered_as')}" if source.get("delivered_as") else ""),
        "created_at": part.get("created_at"), "author": name, "status": conv.get("state"),
        "conversation_id": conv.get("id"), "part_type": part.get("part_type"),
        "subject": (source.get("subject") or None) if first else None,
        # where the customer wrote from: a page URL can carry a reset token or an e-mail in its query
        "page_url": (redact_pii(url) if isinstance(url := source.get("url"), str) else url) if first else None,
        # the customer's remark with a rating ("quick and friendly"): left out before; redacted as a text is
        "rating": rating.get("rating"),
        "rating_remark": redacted_note(rating.get("remark")),
        "intercom_tags": "|".join(str(t["name"]) for t in tags if isinstance(t, dict) and isinstance(t.get("name"), (str, int)))
        or None,
    }


def read_intercom(path: str | os.PathLike, *, encoding: str | None = None) -> Export:
    """Read Intercom conversations into one raw row per customer message (see module doc).

    Rows carry ``id`` (the part's id; the opening message's ``source.id``), ``text`` (HTML, cleaned later),
    ``conversation_id``, ``part_type``, ``author``, ``created_at`` (epoch seconds), ``status`` (the
    conversation's state) and ``page_url`` (where the customer wrote from). ``_row`` numbers every part
    of the export in order, skipped ones included; a conversation that is not an object, or a malformed
    JSON line, becomes one rejected row. :func:`iter_intercom` gives the same rows one at a time.
    """
    skipped: Counter[str] = Counter()
    rows = list(iter_intercom(path, encoding=encoding, skipped=skipped))
    return Export.from_rows(rows, skipped)


def iter_intercom(path: str | os.PathLike, *, encoding: str | None = None,
                  skipped: MutableMapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_intercom`, a conversation at a time (memory: one conversation, never the
    export); ``skipped`` counts the parts left out (notes, agent replies, bots, workflow events)."""
    path = Path(path)
    _check_file(path)
    skipped = skipped if skipped is not None else {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    number = 0
    for _line, conv, error, raw in unpaged(_conversations(path, encoding), "conversations"):
        if error is None and not isinstance(conv, dict):
            error, raw = f"conversation is a {type(conv).__name__}, not an object", str(conv)
        if error is not None:
            number += 1
            yield {"_row": number, "_error": error, "_raw": raw, "source": "support"}
            continue
        # the opening message: "source" since API 2.0, "conversation_message" in 1.x exports (it was left out unsaid)
        opened = conv.get("source") if "source" in conv else conv.get("conversation_message")
        source = opened if isinstance(opened, dict) else {}
        parts_obj = conv.get("conversation_parts")
        parts = parts_obj.get("conversation_parts", []) if isinstance(parts_obj, dict) else parts_obj or []
        parts = parts if isinstance(parts, list) else [parts]  # one part that is no list: "not a conversation part"
        total = str(parts_obj.get("total_count")) if isinstance(parts_obj, dict) else ""  # a number as written
        if total.isdigit() and int(total) > len(parts):
            # the API returns at most 500 parts of a conversation (the list endpoint none): the rest were lost unsaid
            skipped["part not in the export"] = skipped.get("part not in the export", 0) + int(total) - len(parts)
        opening = {**source, "part_type": "opening", "created_at": conv.get("created_at")} if source else None
        tags = conv["tags"].get("tags") if isinstance(conv.get("tags"), dict) else None
        tags = tags if isinstance(tags, list) else []
        rated = False
        if not opening and not parts:  # counted: a conversation left out without a word looked like a lost row
            skip("conversation without messages")
            continue
        for part in ([opening] if opening else []) + list(parts):
            number += 1
            if not isinstance(part, dict):
                skip("not a conversation part")
                continue
            kind, name = _author(part)
            if part.get("part_type") == "note":
                skip("internal note")
            elif part.get("part_type") not in ("opening", "comment", "open", "conversation_rating_changed"):
                skip("workflow event")  # assignment, close, snooze, attribute changes...
            elif kind not in _CUSTOMER:
                skip(_SKIPPED.get(kind, f"{kind or 'unknown'} author"))
            elif (reason := _without_text(part)) is not None:
                skip(reason)  # rejected as "missing text" before: one error per rated or screenshot-only message
            else:
                yield _customer_row(part, name, conv, source, opening, tags, number, rated)
                rated = True
