"""Near-duplicate search: match new feedback to the backlog, list duplicate pairs, group duplicates.

:meth:`Deduper.find` ranks by vector similarity plus a bounded bonus for shared specific words (BM25 over
the terms few items hold), which finds duplicate bug reports that share identifiers and error strings; ``pairs`` and ``groups``
threshold the cosine similarity. Exact blocked inner-product search below ``exact_max`` items, an HNSW index
(hnswlib, the ``feedback-nlp[ann]`` extra) above it.

Example:
    >>> d = Deduper(threshold=0.85).fit(backlog_texts, ids=backlog_ids)     # doctest: +SKIP
    >>> d.find(["Export to CSV is broken"], k=3)                           # doctest: +SKIP
"""

from ._bm25 import BM25, tokenize
from ._deduper import Deduper, calibrate_threshold

__all__ = ["BM25", "Deduper", "calibrate_threshold", "tokenize"]
