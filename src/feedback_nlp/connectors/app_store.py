"""Apple App Store customer reviews, as the App Store Connect API returns them (``GET
/v1/apps/{id}/customerReviews``): ``{"data": [{"type": "customerReviews", "id": ..., "attributes": {"rating",
"title", "body", "reviewerNickname", "createdDate", "territory"}}], "links": ..., "meta": ...}``; also a list of such
pages (pages saved one after the other), a list of review resources, or one resource or page per line.

Each review becomes one row: ``title`` and ``body`` joined as ``text``; the resource ``id``; ``source="app_review"``,
``source_detail="app_store"``; ``createdDate`` as ``created_at``; ``reviewerNickname`` as ``author``; ``rating`` and
``territory`` (an ISO 3166 alpha-3 code such as ``USA``) as they are written. A resource of another type (the
``included`` developer responses of a page are not read) is rejected naming its type.

Example:
    >>> export = read_app_store("tests/fixtures/ingest/app_store_reviews.json")
    >>> export.frame[["id", "rating", "territory"]].iloc[0].tolist()
    ['00000073-6f41-4ab1-8c9d-000123456789', '2', 'USA']
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import InputFileError, quoted, quoted_list
from ._export import Export, title_and_body
from ._json import JsonFile
from ._tables import _check_file, iter_json_lines, sniff_table_format

__all__ = ["iter_app_store", "read_app_store"]

_NOT_AN_EXPORT = ("is not an App Store Connect customer reviews export: expected {\"data\": [...]} as "
                  "GET /v1/apps/{id}/customerReviews returns it, a list of its pages or reviews, or one per line")


def _resources(path: Path, encoding: str | None,
               total: list[int] | None = None) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """(number, resource, reason it is rejected, its text) per review resource, pages flattened, one page at a time.
    ``total`` gains the reviews a page alone says there are (``meta.paging.total`` with a ``links.next``)."""
    if sniff_table_format(path) == "jsonl":
        items = iter_json_lines(path, encoding)
    else:
        doc = JsonFile(path, encoding)
        kind = doc.kind()
        if kind == "array":
            items = doc.items()
        elif kind == "object" and "data" in doc.arrays():
            items = doc.items("data")
            links, meta = doc.keys().get("links"), doc.keys().get("meta")
            paging = meta.get("paging") if isinstance(meta, dict) else None
            count = str(paging.get("total")) if isinstance(paging, dict) else ""
            if isinstance(links, dict) and links.get("next") and count.isdigit() and total is not None:
                total.append(int(count))
        elif kind == "object" and isinstance(doc.keys().get("data"), dict):  # GET /v1/customerReviews/{id}
            items = iter([(1, doc.keys()["data"], None, None)])
        elif kind == "object" and "errors" in doc.arrays():  # the API's error answer saved instead of the reviews
            first = next((v for _, v, _, _ in doc.items("errors") if isinstance(v, dict)), {})
            raise InputFileError(f"{path} holds an App Store Connect API error, not reviews: "
                                 f"{quoted(first.get('detail') or first.get('title') or first.get('code'))}")
        else:
            raise InputFileError(f"{path} {_NOT_AN_EXPORT}")
    number = 0
    for _line, value, error, raw in items:
        page = value.get("data") if error is None and isinstance(value, dict) and "attributes" not in value else None
        if isinstance(page, (list, dict)):  # a page among pages: its reviews in order
            for resource in page if isinstance(page, list) else [page]:
                number += 1
                yield number, resource, None, None
            continue
        number += 1
        yield number, value, error, raw


def _review_row(resource: dict[str, Any], number: int) -> dict[str, Any]:
    attrs: dict[str, Any] = resource["attributes"]
    return {
        "_row": number, "_error": None, "_raw": None,
        "id": resource.get("id"),
        "text": title_and_body(attrs.get("title"), attrs.get("body")),
        "source": "app_review",
        "source_detail": "app_store",
        "created_at": attrs.get("createdDate"),
        "author": attrs.get("reviewerNickname"),
        "rating": attrs.get("rating"),
        "territory": attrs.get("territory"),
    }


def read_app_store(path: str | os.PathLike, *, encoding: str | None = None) -> Export:
    """Read App Store Connect customer reviews into one raw row per review (see module doc).

    ``_row`` numbers the reviews of the export in order; a record that is not a ``customerReviews`` resource, or a
    malformed JSON line, becomes one rejected row. :func:`iter_app_store` gives the same rows one at a time.
    """
    skipped: Counter[str] = Counter()
    return Export.from_rows(iter_app_store(path, encoding=encoding, skipped=skipped), skipped)


def iter_app_store(path: str | os.PathLike, *, encoding: str | None = None,
                   skipped: MutableMapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_app_store`, a review at a time (memory: one page, never the export)."""
    path = Path(path)
    _check_file(path)
    first, number = True, 0
    total: list[int] = []
    for number, resource, error, raw in _resources(path, encoding, total):
        if first and error is None and not (isinstance(resource, dict) and resource.get("type") == "customerReviews"):
            what = (f"of type {quoted(resource.get('type'))}" if isinstance(resource, dict) and "type" in resource
                    else f"an object with the keys {quoted_list(list(resource), 6)}" if isinstance(resource, dict)
                    else f"a {type(resource).__name__}")
            raise InputFileError(f"{path} {_NOT_AN_EXPORT}; its first record is {what}, not a customerReviews "
                                 "resource")
        first = False
        if error is None and not isinstance(resource, dict):
            error, raw = f"review is a {type(resource).__name__}, not an object", str(resource)
        elif error is None and resource.get("type") != "customerReviews":
            error, raw = f"not a customer review (type {quoted(resource.get('type'))})", str(resource)[:2000]
        elif error is None and not isinstance(resource.get("attributes"), dict):
            error, raw = "customer review without attributes", str(resource)[:2000]
        if error is not None:
            yield {"_row": number, "_error": error, "_raw": raw, "source": "app_review",
                   "id": resource.get("id") if isinstance(resource, dict) else None}
            continue
        yield _review_row(resource, number)
    if total and total[0] > number and skipped is not None:
        # the first page of GET /v1/apps/{id}/customerReviews saved as the export: the other reviews lost unsaid
        reason = "review not in the export (one page of the API saved alone?)"
        skipped[reason] = skipped.get(reason, 0) + total[0] - number
