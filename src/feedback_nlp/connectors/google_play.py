"""Google Play Console review exports: the monthly ``reviews_reviews_<package>_<YYYYMM>.csv`` files of *Download
reports → Reviews* (or ``gs://pubsite_prod_rev_<id>/reviews/``), UTF-16 with a byte-order mark, one review per row.

Their columns are ``Package Name``, ``App Version Code``, ``App Version Name``, ``Reviewer Language``, ``Device``,
``Review Submit Date and Time``, ``Review Submit Millis Since Epoch``, ``Review Last Update Date and Time``,
``Review Last Update Millis Since Epoch``, ``Star Rating``, ``Review Title``, ``Review Text``, ``Developer Reply Date
and Time``, ``Developer Reply Millis Since Epoch``, ``Developer Reply Text`` and ``Review Link`` (older exports lack
some; ``Package Name``, ``Star Rating`` and ``Review Text`` are required).

Each written review becomes one row: the title (empty in recent exports) and the text joined as ``text``; the
review id from ``Review Link`` (``gp:AOqpTO…``) as ``id``; ``source="app_review"``, ``source_detail`` =
``google_play/<package>``; the submit time as ``created_at``; the link as ``url``; ``rating``, ``language``,
``device``, ``app_version``, ``updated_at`` and ``replied_at`` as they are written. A star rating without a title
or text is not feedback: it is skipped and counted (``"rating without text"``). The reviewer is anonymous in the
export, so there is no ``author``.

Example:
    >>> export = read_google_play("tests/fixtures/ingest/reviews_reviews_com.acme.notes_202601.csv")
    >>> export.frame[["id", "rating", "source_detail"]].iloc[0].tolist()
    ['gp:AOqpTOFmAVORqfWGcaqfF39ftwFjGkjecjvjXnC3fD9EZQH9Nl8rEQvVg3HWEb7PE1VuzsMWKvqn4SRo1M8a1Q', '2', 'google_play/com.acme.notes']
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import InputFileError, quoted_list
from ._export import Export, title_and_body
from ._tables import _check_file, iter_table, sniff_table_format, table_format

__all__ = ["PLAY_COLUMNS", "iter_google_play", "read_google_play"]

#: The columns of a Play Console reviews report, in the order Google writes them.
PLAY_COLUMNS = ("Package Name", "App Version Code", "App Version Name", "Reviewer Language", "Device",
                "Review Submit Date and Time", "Review Submit Millis Since Epoch", "Review Last Update Date and Time",
                "Review Last Update Millis Since Epoch", "Star Rating", "Review Title", "Review Text",
                "Developer Reply Date and Time", "Developer Reply Millis Since Epoch", "Developer Reply Text",
                "Review Link")
_REQUIRED = ("Package Name", "Star Rating", "Review Text")
# ...console/.../review-details?reviewId=gp:AOqp...&corpus=PUBLIC_REVIEWS (newer; the ':' may be %3A) and
# ...apps/publish?account=...#ReviewDetailsPlace:p=<package>&reviewid=gp:AOqp... (older exports)
_REVIEW_ID = re.compile(r"[?&#;]reviewid=([^&#\s]+)", re.I)


def is_play_header(names: list[str]) -> bool:
    """Whether a CSV header is a Play Console reviews report's (its required columns and ``Review Link``, case
    aside)."""
    have = {n.strip().strip('"').strip().casefold() for n in names}
    # a "text" column of its own: a table someone prepared from a report, read as such
    return {c.casefold() for c in _REQUIRED} <= have and "review link" in have and "text" not in have


def _review_id(link: Any) -> str | None:
    m = _REVIEW_ID.search(link) if isinstance(link, str) else None
    return unquote(m.group(1)) if m else None


def _value(record: Mapping[Any, Any], columns: Mapping[str, str], name: str) -> Any:
    column = columns.get(name.casefold())
    value = record.get(column) if column is not None else None
    return value.strip() or None if isinstance(value, str) else value


def _row_id(record: Mapping[Any, Any], columns: Mapping[str, str], line: int) -> str:
    """The review id of the link; without a link, ``<package>-<submit millis>`` (stable across monthly files), or
    the line as the survey reader does."""
    found = _review_id(_value(record, columns, "Review Link"))
    if found:
        return found
    package, millis = _value(record, columns, "Package Name"), _value(record, columns, "Review Submit Millis Since Epoch")
    return f"{package}-{millis}" if package and millis else str(line)


def _review_row(record: Mapping[Any, Any], columns: Mapping[str, str], line: int) -> dict[str, Any]:
    def get(name: str) -> Any:
        return _value(record, columns, name)

    package = get("Package Name")
    return {
        "_row": line, "_error": None, "_raw": None,
        "id": _row_id(record, columns, line),
        "text": title_and_body(get("Review Title"), get("Review Text")),
        "source": "app_review",
        "source_detail": f"google_play/{package}" if package else "google_play",
        "created_at": get("Review Submit Date and Time") or get("Review Submit Millis Since Epoch"),
        "url": get("Review Link"),
        "rating": get("Star Rating"),
        "language": get("Reviewer Language"),
        "device": get("Device"),
        "app_version": get("App Version Name") or get("App Version Code"),
        "updated_at": get("Review Last Update Date and Time") or get("Review Last Update Millis Since Epoch"),
        "replied_at": get("Developer Reply Date and Time") or get("Developer Reply Millis Since Epoch"),
    }


def read_google_play(path: str | os.PathLike, *, encoding: str | None = None) -> Export:
    """Read a Play Console reviews report into one raw row per written review (see module doc).

    ``_row`` is the review's line in the file (the header is line 1); a row that does not parse (ragged, bad
    bytes) becomes one rejected row; ratings without text are counted in ``skipped``. :func:`iter_google_play`
    gives the same rows a chunk of the file at a time.
    """
    skipped: Counter[str] = Counter()
    return Export.from_rows(iter_google_play(path, encoding=encoding, skipped=skipped), skipped)


def iter_google_play(path: str | os.PathLike, *, encoding: str | None = None,
                     skipped: MutableMapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_google_play`, read a chunk of the file at a time (memory: one chunk)."""
    path = Path(path)
    _check_file(path)
    counts = skipped if skipped is not None else {}
    fmt = sniff_table_format(path)
    if fmt not in ("csv", "tsv"):
        raise InputFileError(f"{path} is not a Google Play reviews report: that is a CSV file "
                             f"(reviews_reviews_<package>_<YYYYMM>.csv), this is {fmt.upper()}")
    columns: dict[str, str] | None = None
    for chunk in iter_table(path, table_format(path) or fmt, encoding=encoding):
        if columns is None:
            names = [c for c in chunk.columns if c not in ("_row", "_error", "_raw")]
            columns = {c.casefold(): c for c in names}
            missing = [c for c in _REQUIRED if c.casefold() not in columns]
            if missing:
                raise InputFileError(f"{path} is not a Google Play reviews report: no column {quoted_list(missing)} "
                                     f"(its columns: {quoted_list(names, 8)})")
        for record in chunk.to_dict("records"):
            line = int(record["_row"])
            error = record.get("_error")
            if isinstance(error, str):
                yield {"_row": line, "_error": error, "_raw": record.get("_raw"),
                       "id": _row_id(record, columns, line), "source": "app_review"}
                continue
            row = _review_row(record, columns, line)
            if row["text"] is None:
                counts["rating without text"] = counts.get("rating without text", 0) + 1
                continue
            yield row
