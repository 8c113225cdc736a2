"""Feedback records: the canonical schema, reading CSV/Parquet/JSONL/DataFrames, and writing outputs.

Every feedback item becomes one row with the canonical columns ``id, text, source`` and, when present,
``account_id, account_revenue, created_at``. Unusable rows are never dropped silently: they come back in
``rejected`` with a reason.

Example:
    >>> import pandas as pd
    >>> fb = read_feedback(pd.DataFrame({"body": ["Export to CSV fails", ""]}), text_col="body")
    >>> len(fb.records), fb.rejected["reason"].tolist()
    (1, ['empty text after cleaning'])
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd

from .cleaning import MAX_TEXT_CHARS, clean_text, text_problem
from .errors import ColumnError, InvalidInputError

__all__ = [
    "CANONICAL_COLUMNS",
    "SOURCES",
    "FeedbackData",
    "iter_table_chunks",
    "read_feedback",
    "read_table",
    "table_format",
    "write_table",
]

PathLike = Union[str, os.PathLike]
SOURCES = ("support", "slack", "sales_call", "survey", "app_review", "other")
CANONICAL_COLUMNS = ("id", "text", "source", "account_id", "account_revenue", "created_at")

# Common spellings of channels in exports from help desks, CRMs and survey tools.
_SOURCE_ALIASES = {
    "ticket": "support", "tickets": "support", "zendesk": "support", "intercom": "support", "email": "support",
    "helpdesk": "support", "support_ticket": "support", "chat": "support",
    "slack_message": "slack", "slack message": "slack",
    "sales": "sales_call", "sales call": "sales_call", "call": "sales_call", "gong": "sales_call",
    "call_notes": "sales_call", "crm": "sales_call",
    "nps": "survey", "csat": "survey", "typeform": "survey", "questionnaire": "survey",
    "review": "app_review", "app review": "app_review", "app_store": "app_review", "play_store": "app_review",
    "appstore": "app_review", "g2": "app_review",
}


@dataclass
class FeedbackData:
    """Result of :func:`read_feedback`: the valid ``records`` and the ``rejected`` rows with a reason.

    Unpacks as ``records, rejected = read_feedback(...)``.
    """

    records: pd.DataFrame
    rejected: pd.DataFrame

    def __iter__(self) -> Iterator[pd.DataFrame]:
        yield self.records
        yield self.rejected

    def __len__(self) -> int:
        return len(self.records) + len(self.rejected)


def table_format(path: PathLike) -> str:
    """The table format implied by a file name: ``csv``, ``parquet`` or ``jsonl``."""
    name = str(path).lower()
    for suffix, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".parquet", "parquet"), (".pq", "parquet"),
                        (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl")):
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return fmt
    raise InvalidInputError(f"cannot tell the format of {path!s}: use a .csv, .tsv, .parquet or .jsonl file")


def read_table(path: PathLike) -> pd.DataFrame:
    """Read a whole CSV/TSV/Parquet/JSONL file into a DataFrame (ids and texts kept as strings)."""
    return pd.concat(list(iter_table_chunks(path, chunk_size=1_000_000)), ignore_index=True)


def iter_table_chunks(path: PathLike, chunk_size: int = 10_000) -> Iterator[pd.DataFrame]:
    """Stream a table in chunks of at most ``chunk_size`` rows without loading the whole file.

    Each chunk carries a ``_row`` column: the 0-based position of the row in the file.
    """
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be >= 1, got {chunk_size}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path}")
    fmt = table_format(path)
    start = 0
    if fmt in ("csv", "tsv"):
        reader = pd.read_csv(path, chunksize=chunk_size, dtype=str, keep_default_na=False,
                             sep="\t" if fmt == "tsv" else ",")
    elif fmt == "jsonl":
        reader = pd.read_json(path, lines=True, chunksize=chunk_size, dtype=False)
    else:
        import pyarrow.parquet as pq

        reader = (b.to_pandas() for b in pq.ParquetFile(path).iter_batches(batch_size=chunk_size))
    for chunk in reader:
        chunk = chunk.reset_index(drop=True)
        chunk.insert(0, "_row", np.arange(start, start + len(chunk), dtype=np.int64))
        start += len(chunk)
        yield chunk


def write_table(df: pd.DataFrame, path: PathLike) -> Path:
    """Write a DataFrame as CSV, Parquet or JSONL, chosen by the file name; list columns survive
    Parquet and JSONL as lists and CSV as ``|``-joined strings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = table_format(path)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, date_format="iso", force_ascii=False)
    else:
        out = df.copy()
        for col in out.columns:
            if out[col].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
                out[col] = out[col].map(lambda v: "|".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
        out.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")
    return path


def _rows(mask: pd.Series, limit: int = 10) -> str:
    idx = list(np.flatnonzero(mask.to_numpy()))
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f" … ({len(idx)} rows)" if len(idx) > limit else "")


def _require_column(df: pd.DataFrame, col: str, role: str) -> None:
    if col not in df.columns:
        raise ColumnError(f"{role} column {col!r} not found; available columns: {list(map(str, df.columns))}")


def _normalise_sources(values: pd.Series, unknown_source: str) -> pd.Series:
    canon = values.astype(str).str.strip().str.lower()
    canon = canon.map(lambda v: v if v in SOURCES else _SOURCE_ALIASES.get(v.replace("-", "_"), _SOURCE_ALIASES.get(v, v)))
    canon = canon.where(~values.isna() & (values.astype(str).str.strip() != ""), "other")
    bad = ~canon.isin(SOURCES)
    if bad.any():
        if unknown_source == "other":
            return canon.where(~bad, "other")
        raise InvalidInputError(
            f"column 'source' has unknown channel(s) {sorted(set(canon[bad]))[:5]} in rows {_rows(bad)}; "
            f"expected one of {SOURCES} (or pass unknown_source='other')"
        )
    return canon


def read_feedback(
    source: PathLike | pd.DataFrame,
    *,
    text_col: str = "text",
    id_col: str | None = None,
    source_col: str | None = None,
    account_col: str | None = None,
    revenue_col: str | None = None,
    time_col: str | None = None,
    default_source: str = "other",
    unknown_source: str = "error",
    columns: Mapping[str, str] | None = None,
    keep_columns: bool = True,
    clean: bool = True,
    max_chars: int = MAX_TEXT_CHARS,
) -> FeedbackData:
    """Read and validate feedback into the canonical schema.

    Args:
        source: a CSV/TSV/Parquet/JSONL path or a DataFrame.
        text_col, id_col, source_col, account_col, revenue_col, time_col: names of the input columns.
            Optional ones default to the canonical name when such a column exists.
        default_source: channel used when there is no source column.
        unknown_source: ``"error"`` (default) raises on channels it cannot map; ``"other"`` maps them to other.
        columns: extra ``{input_name: canonical_name}`` mapping, applied first.
        keep_columns: keep the non-canonical input columns after the canonical ones.
        clean: replace ``text`` by :func:`clean_text` output (the raw text is kept in ``raw_text``).

    Returns:
        :class:`FeedbackData` with ``records`` (valid rows) and ``rejected`` (``id, row, reason, text``).

    Raises:
        ColumnError: a named column is missing, ids are duplicated, or dates/revenues do not parse
            (the message names the column and the rows).
    """
    df = read_table(source) if not isinstance(source, pd.DataFrame) else source.copy()
    if "_row" in df.columns:
        df = df.drop(columns="_row")
    if columns:
        df = df.rename(columns=dict(columns))
    _require_column(df, text_col, "text")
    if default_source not in SOURCES:
        raise InvalidInputError(f"default_source {default_source!r} is not one of {SOURCES}")

    def optional(given: str | None, canonical: str, role: str) -> str | None:
        if given is not None:
            _require_column(df, given, role)
            return given
        return canonical if canonical in df.columns else None

    id_col = optional(id_col, "id", "id")
    source_col = optional(source_col, "source", "source")
    account_col = optional(account_col, "account_id", "account")
    revenue_col = optional(revenue_col, "account_revenue", "revenue")
    time_col = optional(time_col, "created_at", "timestamp")

    out = pd.DataFrame(index=df.index)
    if id_col is None:
        out["id"] = [str(i) for i in range(len(df))]
    else:
        ids = df[id_col]
        missing = ids.isna() | (ids.astype(str).str.strip() == "")
        if missing.any():
            raise ColumnError(f"id column {id_col!r} is empty in rows {_rows(missing)}")
        out["id"] = ids.astype(str).str.strip()
        dup = out["id"].duplicated(keep=False)
        if dup.any():
            raise ColumnError(f"id column {id_col!r} has duplicate ids {sorted(set(out['id'][dup]))[:5]} in rows {_rows(dup)}")
    raw = df[text_col]
    out["source"] = _normalise_sources(df[source_col], unknown_source) if source_col else default_source
    if account_col:
        acc = df[account_col]
        out["account_id"] = acc.where(acc.isna(), acc.astype(str).str.strip()).replace("", None)
    if revenue_col:
        rev_raw = df[revenue_col]
        blank = rev_raw.isna() | (rev_raw.astype(str).str.strip() == "")
        rev = pd.to_numeric(rev_raw.astype(str).str.replace(r"[,$€£\s]", "", regex=True).where(~blank), errors="coerce")
        bad = (rev.isna() & ~blank) | (rev < 0)
        if bad.any():
            raise ColumnError(f"revenue column {revenue_col!r} has non-numeric or negative values in rows {_rows(bad)}")
        out["account_revenue"] = rev.astype(float)
    if time_col:
        t_raw = df[time_col]
        blank = t_raw.isna() | (t_raw.astype(str).str.strip() == "")
        ts = pd.to_datetime(t_raw.where(~blank), errors="coerce", utc=True, format="mixed")
        bad = ts.isna() & ~blank
        if bad.any():
            raise ColumnError(f"timestamp column {time_col!r} has unparseable dates in rows {_rows(bad)}")
        out["created_at"] = ts
    cleaned = [clean_text(t) if isinstance(t, str) else None for t in raw]
    reasons = [text_problem(r, c, max_chars=max_chars) for r, c in zip(raw, cleaned)]
    out.insert(1, "text", [c if clean else r for c, r in zip(cleaned, raw)])
    if clean:
        out["raw_text"] = raw.to_numpy()
    if keep_columns:
        used = {text_col, id_col, source_col, account_col, revenue_col, time_col}
        for col in df.columns:
            if col not in used and col not in out.columns:
                out[col] = df[col].to_numpy()
    bad = np.array([r is not None for r in reasons], dtype=bool)
    rejected = pd.DataFrame({
        "id": out["id"].to_numpy()[bad],
        "row": np.flatnonzero(bad),
        "reason": [r for r in reasons if r is not None],
        "text": [r if isinstance(r, str) else None for r, b in zip(raw, bad) if b],
    })
    return FeedbackData(out[~bad].reset_index(drop=True), rejected)
