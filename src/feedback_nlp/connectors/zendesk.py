"""Zendesk tickets: the Tickets API / export JSON (``{"tickets": [...]}``, optionally with side-loaded
``users`` and ``organizations``) or the account export's JSON lines (one ticket per line).

Each ticket becomes one row: ``subject`` and ``description`` (the first comment, often HTML in exports)
joined as the text; ``via.channel`` kept as ``source_detail`` (``zendesk/email``, ``zendesk/web``…);
the requester as ``author`` and the organization as ``account_id`` (names when side-loaded, ids
otherwise); ``status``; the agent-facing ticket URL; custom fields as ``custom_<field id>`` columns.

Example:
    >>> export = read_zendesk("tests/fixtures/ingest/zendesk_tickets.json")
    >>> export.frame[["id", "source_detail", "author", "account_id"]].iloc[0].tolist()
    ['35436', 'zendesk/web', 'Ana Souza', 'Globex']
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import InputFileError, quoted
from ._export import Export, redacted_note, unpaged
from ._json import JsonFile
from ._tables import _check_file, iter_json_lines, sniff_table_format

__all__ = ["iter_zendesk", "read_zendesk"]

_API_URL = re.compile(r"^(https://[^/]+)/api/v2/tickets/(\d+)\.json$")


def _text(ticket: dict[str, Any]) -> Any:
    subject = ticket.get("subject") or ticket.get("raw_subject") or ""
    body = ticket.get("description")
    if not body:  # exports with comments side-loaded: the first comment is the request
        comments = ticket.get("comments") or []
        first = comments[0] if comments and isinstance(comments[0], dict) else {}
        body = first.get("html_body") or first.get("body") or first.get("plain_body") or ""
    for value in (subject, body):
        if isinstance(value, (dict, list)):  # str() made "{'a': 1}" the text of the ticket: the validator rejects it
            return value
    subject, body = str(subject).strip(), str(body).strip()
    if not subject and not body:
        return None
    if not subject or body.lower().startswith(subject.lower()):
        return body
    return f"{subject}\n\n{body}" if body else subject


def _tags(tags: Any) -> str | None:
    """Tags as one ``a|b`` cell; ``"tags": true`` (or another value that is no list) was a TypeError."""
    if isinstance(tags, list):
        return "|".join(map(str, tags)) or None
    return tags or None if isinstance(tags, str) else None


def _name(index: dict[str, dict[str, Any]], ident: Any) -> Any:
    entry = index.get(str(ident)) if ident is not None else None
    return (entry or {}).get("name") or ident


def _ticket_row(t: dict[str, Any], users: dict[str, dict[str, Any]], orgs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    via: dict[str, Any] = t["via"] if isinstance(t.get("via"), dict) else {}
    requester: dict[str, Any] = t["requester"] if isinstance(t.get("requester"), dict) else {}
    url = t.get("url")
    m = _API_URL.match(url) if isinstance(url, str) else None
    rating: dict[str, Any] = t["satisfaction_rating"] if isinstance(t.get("satisfaction_rating"), dict) else {}
    row: dict[str, Any] = {
        "id": t.get("id"),
        "text": _text(t),
        "source": "support",
        "source_detail": f"zendesk/{via.get('channel')}" if via.get("channel") else "zendesk",
        "created_at": t.get("created_at"),
        "author": requester.get("name") or _name(users, t.get("requester_id")),
        "account_id": _name(orgs, t.get("organization_id")),
        "status": t.get("status"),
        "url": f"{m.group(1)}/agent/tickets/{m.group(2)}" if m else url,
        "priority": t.get("priority"),
        "ticket_type": t.get("type"),
        "zendesk_tags": _tags(t.get("tags")),
        "satisfaction": rating.get("score"),
        # the customer's words with a CSAT rating ("slow to answer, but fixed"): kept beside the ticket, redacted as
        # its text is; they were left out without a word
        "satisfaction_comment": redacted_note(rating.get("comment")),
        "updated_at": t.get("updated_at"),
    }
    fields = t.get("custom_fields") or t.get("fields")
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, dict) and "id" in field:
            value = field.get("value")
            row[f"custom_{field['id']}"] = "|".join(map(str, value)) if isinstance(value, list) else value
    return row


def _index(items: Any) -> dict[str, dict[str, Any]]:
    return {str(i["id"]): i for i in items or [] if isinstance(i, dict) and "id" in i}


def read_zendesk(path: str | os.PathLike, *, encoding: str | None = None) -> Export:
    """Read Zendesk tickets (JSON or JSON lines) into one raw row per ticket (see module doc).

    ``_row`` is the ticket's line in JSON lines, its 1-based position in a JSON array (pages saved as a list or
    one per line, ``[{"tickets": [...]}, ...]``, are read in order, tickets numbered on); a malformed line
    or a non-object entry becomes a rejected row. :func:`iter_zendesk` gives the same rows one at a time.
    """
    skipped: dict[str, int] = {}
    return Export.from_rows(iter_zendesk(path, encoding=encoding, skipped=skipped), skipped)


def iter_zendesk(path: str | os.PathLike, *, encoding: str | None = None,
                 skipped: MutableMapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_zendesk`, a ticket at a time: memory holds the side-loaded users and
    organizations and one ticket, never the export (a 200 MB export held 1.5 GB as one table). ``skipped``
    counts the tickets a page's ``count`` names beyond those in the file (one page of the API saved alone)."""
    path = Path(path)
    _check_file(path)
    users: dict[str, dict[str, Any]] = {}
    orgs: dict[str, dict[str, Any]] = {}
    items: Iterable[tuple[int, Any, str | None, str | None]]
    expected = ""  # the tickets the API's page says there are ("count"), as written
    if sniff_table_format(path) == "jsonl":
        items = iter_json_lines(path, encoding)
    else:  # read a record at a time: exports of a whole help desk run to gigabytes
        doc = JsonFile(path, encoding)
        kind = doc.kind()
        keys = doc.keys() if kind == "object" else {}
        arrays = doc.arrays() if kind == "object" else []
        users = _index(v for _, v, _, _ in doc.items("users")) if "users" in arrays else {}
        orgs = _index(v for _, v, _, _ in doc.items("organizations")) if "organizations" in arrays else {}
        key = "tickets" if "tickets" in keys else "results" if "results" in keys else None
        if kind == "array":
            items = doc.items()
        elif key is not None and key in arrays:
            items = doc.items(key)
            expected = str(keys.get("count")) if keys.get("next_page") or keys.get("meta") else ""
        elif key is None and "ticket" in keys:
            items = [(1, keys["ticket"], None, None)]
        else:
            raise InputFileError(f"{path} is not a Zendesk tickets export: expected {{\"tickets\": [...]}}, a list of "
                                 "tickets or one ticket per line")
    read = 0
    for number, ticket, error, raw in unpaged(items, "tickets"):
        read += 1
        if error is None and not isinstance(ticket, dict):
            error, raw = f"ticket is a {type(ticket).__name__}, not an object", str(ticket)
        elif error is None and ticket.get("result_type", "ticket") != "ticket":
            # the Search API without type:ticket mixes users, organizations and groups in with the tickets: each was
            # rejected as "missing text", a ticket with no words
            error, raw = f"a search result of type {quoted(ticket.get('result_type'))}, not a ticket", str(ticket)[:2000]
        if error is not None:
            yield {"_row": number, "_error": error, "_raw": raw, "source": "support",
                   **({"id": ticket.get("id")} if isinstance(ticket, dict) and "id" in ticket else {})}
            continue
        yield {"_row": number, "_error": None, "_raw": None, **_ticket_row(ticket, users, orgs)}
    if expected.isdigit() and int(expected) > read and skipped is not None:
        # the first page of GET /api/v2/tickets.json saved as the export: 100 tickets read, the other thousands
        # lost without a word
        reason = "ticket not in the export (one page of the API saved alone?)"
        skipped[reason] = skipped.get(reason, 0) + int(expected) - read
