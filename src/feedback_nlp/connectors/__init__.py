"""Readers for every export a product team has: table files and the exports of Slack, Zendesk, Intercom,
survey tools, Google Play and App Store reviews and GitHub issues. Each returns raw rows in the canonical column names with ``_row`` (the line or record
number in the source); :mod:`feedback_nlp.records` validates them all with one validator.

Example:
    >>> from feedback_nlp import read_feedback
    >>> fb = read_feedback("tests/fixtures/ingest/slack_export.zip", format="slack")   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputNotFoundError, InvalidInputError
from ._export import Export, row_chunks
from ._tables import (
    _BOMS,
    _EXCEL_SEP,
    TABLE_FORMATS,
    _open,
    check_regular,
    iter_table,
    json_loads,
    resolve_encoding,
    sniff_table_format,
    table_format,
)
from .github import is_issue

__all__ = ["TABLE_FORMATS", "VENDOR_FORMATS", "Export", "iter_export", "iter_table", "read_export", "resolve_encoding",
           "sniff_format", "table_format"]

VENDOR_FORMATS = ("slack", "zendesk", "intercom", "survey", "google_play", "github", "app_store")


def sniff_format(path: str | os.PathLike) -> str:
    """The format of a source: a Slack export (folder or zip with ``channels.json``), or a table format."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"input file not found: {path}")
    if path.is_dir():
        if (path / "channels.json").exists() or (path / "users.json").exists():
            return "slack"
        return sniff_table_format(path)  # raises: a folder is not a table
    check_regular(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(n.rsplit("/", 1)[-1] == "channels.json" for n in zf.namelist()):
                return "slack"
        raise InvalidInputError(f"{path} is a zip file but not a Slack export (no channels.json inside); "
                               "save spreadsheets as CSV")
    fmt = sniff_table_format(path)
    if fmt in ("csv", "tsv"):
        return _vendor_csv(path) or fmt
    return _vendor_json(path, fmt) or fmt if fmt in ("json", "jsonl") else fmt


def _vendor_csv(path: Path) -> str | None:
    """Recognise a Google Play reviews report among CSV files by its header (UTF-16 as Google writes it)."""
    from .google_play import is_play_header

    with _open(path) as fh:
        head = fh.read(1 << 13)
    for bom, codec in _BOMS:
        if head.startswith(bom):
            text = head.decode(codec, errors="ignore").removeprefix("\ufeff")  # the mark says the byte order
            break
    else:  # a report re-saved as UTF-16 without the mark (read with encoding='utf-16-le'): every other byte is 0
        sample = head[:512]
        wide = len(sample) >= 4 and (sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4)
        codec = ("utf-16-le" if sample[1::2].count(0) >= sample[0::2].count(0) else "utf-16-be") if wide else "utf-8"
        text = head.decode(codec, errors="ignore")
    lines = re.split(r"\r\n|\r|\n", text, maxsplit=2)  # old Mac files end lines with \r alone
    # Excel's "sep=," hint line before the header: the report was read as a plain table ("text column not found")
    excel = _EXCEL_SEP.fullmatch(lines[0]) if len(lines) > 1 else None
    first = lines[1] if excel else lines[0]
    delimiter = excel[1] if excel else "\t" if first.count("\t") > first.count(",") else ","
    try:
        names = next(csv.reader([first], delimiter=delimiter), [])
    except csv.Error:  # sniffing only recognises; the table reader reports what is wrong with the file
        return None
    return "google_play" if is_play_header(names) else None


# one page, or pages saved as a list ([{"tickets": [...]}, ...])
_ZENDESK_DOC = re.compile(rb'^\s*\[?\s*\{[^\[]{0,2000}?"tickets"\s*:\s*\[|^\s*\{\s*"ticket"\s*:\s*\{')
_INTERCOM_DOC = re.compile(rb'"type"\s*:\s*"conversation(?:\.list)?"')


def _vendor_json(path: Path, fmt: str) -> str | None:
    """Recognise Zendesk, Intercom, App Store and GitHub exports among JSON files by their first bytes or first
    record."""
    with _open(path) as fh:  # a .json.gz export is recognised like the plain file (its gzip bytes were read)
        head = fh.read(1 << 16)
    for bom, codec in _BOMS:  # UTF-16 as Windows PowerShell's ">" writes it (gh ... > issues.json): read as UTF-8 bytes
        if head.startswith(bom) and codec != "utf-8-sig":
            head = head.decode(codec, errors="ignore").removeprefix("\ufeff").encode("utf-8")
            break
    if fmt == "json":
        if _ZENDESK_DOC.search(head):
            return "zendesk"
        if _INTERCOM_DOC.search(head[:2000]):
            return "intercom"
        if _APP_STORE_DOC.search(head[:4000]):
            return "app_store"
        return "github" if is_issue(_first_record(head)) else None
    try:
        first = json_loads(head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace"))
    except ValueError:
        return None
    if isinstance(first, dict):
        if first.get("type") == "conversation" and "conversation_parts" in first or first.get("type") == "conversation.list":
            return "intercom"
        if {"via", "requester_id", "subject"} <= first.keys() or isinstance(first.get("tickets"), list):
            return "zendesk"  # a ticket, or a page of tickets, per line
        if first.get("type") == "customerReviews" and isinstance(first.get("attributes"), dict):
            return "app_store"
    return "github" if is_issue(first) else None


_APP_STORE_DOC = re.compile(rb'"type"\s*:\s*"customerReviews"')
_FIRST_DECODER = json.JSONDecoder()
_SEARCH_DOC = re.compile(r'\{\s*"total_count"\s*:\s*\d+\s*,\s*"incomplete_results"\s*:\s*(?:true|false)\s*,\s*"items"\s*:\s*\[')


def _first_record(head: bytes) -> Any:
    """The first record of a JSON array (the first of its first page, for a list of pages), when the file's first
    64 KB hold it whole; None otherwise."""
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    search = _SEARCH_DOC.match(text)  # the search API: {"total_count": 3, "incomplete_results": false, "items": [
    text = "[" + text[search.end():] if search else text
    for _ in range(2):
        if not text.startswith("["):
            return None
        text = text[1:].lstrip()
        if not text.startswith("["):
            break
    try:
        return _FIRST_DECODER.raw_decode(text)[0]
    except (ValueError, RecursionError):
        return None


def iter_export(path: str | os.PathLike, fmt: str, *, encoding: str | None = None, chunk_size: int = 10_000,
                skipped: dict[str, int] | None = None) -> Iterator[pd.DataFrame]:
    """A vendor export as raw frames of at most ``chunk_size`` rows, as the table readers give them: Zendesk
    and Intercom a record at a time, surveys a response at a time (their questions are chosen on the first
    responses, see :func:`~feedback_nlp.connectors.survey.iter_survey`), Slack a day file at a time, so memory is
    bounded by the chunk, not the export. ``skipped`` gains what was left out."""
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be >= 1, got {chunk_size}")
    skipped = skipped if skipped is not None else {}
    if fmt == "zendesk":
        from .zendesk import iter_zendesk

        yield from row_chunks(iter_zendesk(path, encoding=encoding, skipped=skipped), chunk_size)
    elif fmt == "intercom":
        from .intercom import iter_intercom

        yield from row_chunks(iter_intercom(path, encoding=encoding, skipped=skipped), chunk_size)
    elif fmt == "survey":
        from .survey import iter_survey

        yield from row_chunks(iter_survey(path, encoding=encoding, skipped=skipped), chunk_size)
    elif fmt == "slack":
        from .slack import iter_slack

        yield from row_chunks(iter_slack(path, skipped=skipped), chunk_size)
    elif fmt == "google_play":
        from .google_play import iter_google_play

        yield from row_chunks(iter_google_play(path, encoding=encoding, skipped=skipped), chunk_size)
    elif fmt == "github":
        from .github import iter_github

        yield from row_chunks(iter_github(path, encoding=encoding, skipped=skipped), chunk_size)
    elif fmt == "app_store":
        from .app_store import iter_app_store

        yield from row_chunks(iter_app_store(path, encoding=encoding, skipped=skipped), chunk_size)
    else:
        export = read_export(path, fmt, encoding=encoding)
        for reason, count in export.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
        frame = export.frame
        for start in range(0, max(len(frame), 1), chunk_size):
            yield frame.iloc[start:start + chunk_size].reset_index(drop=True)


def read_export(path: str | os.PathLike, fmt: str, *, encoding: str | None = None) -> Export:
    """Read a vendor export (one of :data:`VENDOR_FORMATS`) into raw canonical rows."""
    if fmt not in VENDOR_FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}; expected one of {VENDOR_FORMATS}")
    # one module per vendor, named as its format and imported on first use
    reader = getattr(importlib.import_module(f".{fmt}", __name__), f"read_{fmt}")
    return reader(path) if fmt == "slack" else reader(path, encoding=encoding)
