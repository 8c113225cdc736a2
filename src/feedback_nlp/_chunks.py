"""The chunk work shared by the local batch engine (:mod:`feedback_nlp.batch`) and Dask
(:mod:`feedback_nlp.dask`): load a model once per process, validate and tag one chunk.

Both engines import this module and neither imports the other, so a Dask worker never loads the batch
job's machinery and there is no import cycle.

Example:
    >>> import pandas as pd
    >>> packed = _pack(RowValidator(keep_columns=False).validate(pd.DataFrame({"_row": [1, 2], "id": ["a", "b"],
    ...                                                                   "text": ["CSV export fails", ""]})))
    >>> packed["_reason"].tolist()
    [None, 'empty text after cleaning']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .cleaning import MAX_TEXT_CHARS
from .records import REJECT_COLUMNS, FeedbackData, RowValidator

__all__ = ["TAG_COLUMNS", "load_model_cached", "process_chunk"]

_MODELS: dict[str, Any] = {}
_LOADED_FROM: dict[str, str | None] = {}  # the manifest digest of the folder each model was loaded from
ERROR_COLUMNS = list(REJECT_COLUMNS)
TAG_COLUMNS = ["row", "id", "tags", "probabilities", "confidence", "needs_review"]


def load_model_cached(model: str | os.PathLike, cache: str | os.PathLike | bool | None = True,
                      backend: str | None = None) -> Any:
    """Load a tag model once per process (Dask workers call this for every task: only the first loads).

    ``backend`` is the embedding backend; a distributed job passes the one its driver resolved, so that
    workers on different CPUs never mix the vectors of different backends. A model folder saved again since
    (retrained into the same folder) is loaded again: its first model tagged every later job of the process
    (a notebook, a Dask worker) without a word.
    """
    from ._persist import manifest_digest
    from .embedding import Embedder
    from .tagging import TagClassifier

    key = f"{model}|{cache}|{backend}"
    digest = manifest_digest(model) if (Path(model) / "config.json").is_file() else None
    if key not in _MODELS or _LOADED_FROM.get(key, digest) != digest:
        probe = TagClassifier.load(model, backend=backend)
        if isinstance(probe.embedder_, Embedder) and cache:
            from .cache import EmbeddingCache

            probe.embedder_.cache = EmbeddingCache(None if cache is True else cache)
        _MODELS[key], _LOADED_FROM[key] = probe, digest
    return _MODELS[key]


def _reject_reason(row_id: Any, text: Any, cleaned: str | None, max_chars: int) -> str | None:
    """Why one row would be rejected (the validator's text and id checks, without its dates or duplicates)."""
    chunk = pd.DataFrame({"_row": [1], "id": [row_id], "text": [text]}, dtype=object)
    chunk["_row"] = chunk["_row"].astype(np.int64)
    rejected = RowValidator(id_col="id", max_chars=max_chars, keep_columns=False).validate(chunk).rejected
    return rejected["reason"].iloc[0] if len(rejected) else None


def _pack(fb: FeedbackData) -> pd.DataFrame:
    """One validated chunk as a single frame in source order: ``_row, id, text`` for accepted rows and
    ``_reason, _reject_text`` for rejected ones. This is what travels to Dask workers."""
    ok = pd.DataFrame({"_row": fb.records["row"].to_numpy(dtype=np.int64), "id": fb.records["id"].to_numpy(),
                       "text": fb.records["text"].to_numpy(), "_reason": None, "_reject_text": None})
    bad = pd.DataFrame({"_row": fb.rejected["row"].to_numpy(dtype=np.int64), "id": fb.rejected["id"].to_numpy(),
                        "text": None, "_reason": fb.rejected["reason"].to_numpy(), "_reject_text": fb.rejected["text"].to_numpy()})
    both = pd.concat([f.astype({c: object for c in f.columns if c != "_row"}) for f in (ok, bad) if len(f)] or [ok],
                     ignore_index=True)
    return both.sort_values("_row", kind="stable").reset_index(drop=True)


def _validate_chunk(chunk: pd.DataFrame, text_col: str, id_col: str | None,
                    max_chars: int) -> tuple[np.ndarray, list[str], list[str], pd.DataFrame]:
    """(ok mask, ids and cleaned texts of the ok rows, rejected rows) of a packed chunk, or of a raw one
    (a Dask partition), which is validated here on its own."""
    if "_reason" not in chunk.columns:
        chunk = _pack(RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars).validate(chunk))
    ok = chunk["_reason"].isna().to_numpy()
    bad = chunk[~ok]
    errors = pd.DataFrame({"row": bad["_row"].to_numpy(dtype=np.int64), "id": bad["id"].to_numpy(),
                           "reason": bad["_reason"].to_numpy(), "text": bad["_reject_text"].to_numpy()},
                          columns=ERROR_COLUMNS)
    return ok, chunk["id"][ok].tolist(), chunk["text"][ok].tolist(), errors


def process_chunk(chunk: pd.DataFrame, model: Any, *, text_col: str = "text", id_col: str = "id",
                  max_chars: int = MAX_TEXT_CHARS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tag one chunk: returns (tagged rows, rejected rows with a reason). Every input row is in exactly one."""
    if "_reason" not in chunk.columns:
        chunk = _pack(RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars).validate(chunk))
    ok, ids, good, errors = _validate_chunk(chunk, text_col, id_col, max_chars)
    if good:
        out = model.tag(good, ids=ids)
    else:
        out = pd.DataFrame(columns=["id", "tags", "probabilities", "confidence", "needs_review"])
    out.insert(0, "row", chunk["_row"].to_numpy(dtype=np.int64)[ok])
    out["probabilities"] = out["probabilities"].map(as_probabilities)
    return out.reset_index(drop=True), errors


def as_probabilities(value: Any) -> dict[str, float]:
    """``{tag: probability}`` from a model's output (a dict or its JSON text): stored as a real map column.

    >>> as_probabilities('{"bug": 0.9}')
    {'bug': 0.9}
    """
    if isinstance(value, str):
        value = json.loads(value) if value else {}
    return {str(k): float(v) for k, v in dict(value or {}).items()}
