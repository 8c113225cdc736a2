"""Feedback records: the canonical schema, one row validator for every reader, and writing outputs.

Every feedback item becomes one row with the canonical columns ``id, text, source`` and, when present,
``account_id, account_revenue, created_at, url, author, status, status_changed_at``, plus provenance
(``row``: the 1-based line or record number in the source; ``source_detail``: channel, question, via).
Unusable rows are never dropped silently: they come back in ``rejected`` (:data:`REJECT_COLUMNS`:
``row, id, reason, text``, the text redacted of PII) with a reason. :func:`read_feedback` and the
streaming jobs (``tag``, ``dedupe``, ``themes``, ``report``) use the same :class:`RowValidator`, so one file
gives the same accepted rows and rejects through the API and every command.

Example:
    >>> import pandas as pd
    >>> fb = read_feedback(pd.DataFrame({"id": [7, 8, 7], "body": ["Export to CSV fails", "N/A", "Dark mode"]}),
    ...                    text_col="body")
    >>> fb.records["id"].tolist(), fb.rejected[["row", "reason"]].values.tolist()
    (['7'], [[2, "placeholder text 'N/A'"], [3, 'duplicate id']])
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, Union, cast

import numpy as np
import pandas as pd

from . import _config
from .cleaning import _SURROGATE, MAX_TEXT_CHARS, _has_surrogate, clean_text, redact_pii, text_problem
from .connectors import VENDOR_FORMATS, iter_export, iter_table, sniff_format
from .errors import ColumnError, InvalidInputError, quoted, quoted_cell, quoted_list

__all__ = [
    "CANONICAL_COLUMNS",
    "FORMATS",
    "PLACEHOLDERS",
    "REJECT_COLUMNS",
    "SOURCES",
    "FeedbackData",
    "RowValidator",
    "iter_feedback",
    "iter_table_chunks",
    "parse_timestamp",
    "to_utc_times",
    "read_feedback",
    "read_table",
    "table_format",
    "csv_ready",
    "neutralise_formula",
    "write_table",
    "write_json_array",
    "open_text_output",
]

PathLike = Union[str, os.PathLike]
SOURCES = ("support", "slack", "sales_call", "survey", "app_review", "other")
CANONICAL_COLUMNS = ("id", "text", "source", "account_id", "account_revenue", "created_at", "url", "author",
                     "status", "status_changed_at")
#: Provenance columns: where in its source each row came from.
PROVENANCE_COLUMNS = ("row", "source_detail", "source_file")
#: The one schema of rejected rows, for the API and every command.
REJECT_COLUMNS = ("row", "id", "reason", "text")
#: Input formats of :func:`read_feedback` (``auto`` picks one by extension and content).
FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl", "json", *VENDOR_FORMATS)
#: Values that mean "nothing here" in exports and spreadsheets; compared case-insensitively after
#: stripping. A text equal to one is rejected; an id equal to one is missing; other fields become empty.
PLACEHOLDERS = ("none", "null", "nil", "nan", "n/a", "n.a.", "na", "-", "--", "---", "—", "–", ".", "?",
                "#n/a", "#na", "#n/a n/a", "#null!", "#value!", "#ref!", "#div/0!", "#name?", "#num!",
                "undefined", "(blank)", "(empty)", "(null)", "(none)", "<null>", "<na>", "nat", "[deleted]",
                "[removed]")

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

    Unpacks as ``records, rejected = read_feedback(...)``. ``skipped`` counts what a connector left out
    on purpose because it is not feedback (Slack joins and bot messages, agents' replies, ...).
    """

    records: pd.DataFrame
    rejected: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        yield self.records
        yield self.rejected

    def __len__(self) -> int:
        return len(self.records) + len(self.rejected)


def no_usable_rows(source: object, rejected: pd.DataFrame) -> InvalidInputError:
    """The error of a command that needs rows when none is left: says whether the file had none or why each
    was rejected (the errors file is not written when the command fails).

    >>> str(no_usable_rows("t.csv", pd.DataFrame({"reason": ["missing text", "missing text", "duplicate id"]})))
    't.csv has no usable feedback rows: all 3 were rejected (2 × missing text; 1 × duplicate id)'
    """
    if len(rejected) == 0:
        return InvalidInputError(f"{source} has no rows (only a header, or nothing)")
    counts = rejected["reason"].astype(str).value_counts()
    why = "; ".join(f"{n} × {reason}" for reason, n in counts.head(3).items())
    more = f"; {len(counts) - 3} other reasons" if len(counts) > 3 else ""
    return InvalidInputError(f"{source} has no usable feedback rows: all {len(rejected)} were rejected ({why}{more})")


def table_format(path: PathLike) -> str:
    """The format an output file name asks for: ``csv``, ``tsv``, ``parquet``, ``jsonl`` (``.jsonl``,
    ``.ndjson``) or ``json`` (one JSON array); text formats may end in ``.gz``. A name that says none of them is
    refused before any work (``x.txt`` would otherwise get whatever format was the default).

    >>> table_format("tagged.json"), table_format("t.ndjson.gz"), table_format("t.pq")
    ('json', 'jsonl', 'parquet')
    """
    name = str(path).lower()
    for suffix, fmt in OUTPUT_SUFFIXES:
        # Parquet compresses inside the file: a gzipped Parquet file is read by nothing, so .parquet.gz is refused
        if name.endswith(suffix) or (fmt != "parquet" and name.endswith(suffix + ".gz")):
            return fmt
    raise InvalidInputError(f"cannot tell the output format of {quoted(str(path))}: use a .csv, .tsv, .parquet, "
                            ".jsonl (or .ndjson: JSON lines) or .json (one JSON array) file; text formats may "
                            "end in .gz")


OUTPUT_SUFFIXES = ((".csv", "csv"), (".tsv", "tsv"), (".parquet", "parquet"), (".pq", "parquet"),
                    (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"))


def open_text_output(path: PathLike) -> TextIO:
    """A text file to write, gzip-compressed when the name ends in ``.gz`` (UTF-8, no newline translation).

    The gzip header holds no file name and no time: ``gzip.open`` stored the hidden temp file's name (which
    ``gunzip -N`` restored the data under) and the clock, so two runs of one job never gave the same bytes.
    """
    if str(path).lower().endswith(".gz"):
        import gzip

        raw = open(path, "wb")  # noqa: SIM115 - closed with the text stream (_ClosingText)
        try:
            return _ClosingText(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0), raw)
        except BaseException:
            raw.close()
            raise
    return open(path, "w", encoding="utf-8", newline="")


class _ClosingText(io.TextIOWrapper):
    """UTF-8 text over a gzip stream that also closes the file under it (GzipFile leaves a given file open)."""

    def __init__(self, gz: Any, raw: Any) -> None:
        super().__init__(gz, encoding="utf-8", newline="")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def write_json_array(frames: Iterable[pd.DataFrame], fh: TextIO) -> int:
    """Write frames as one JSON array, a record per line, one frame at a time (memory: one frame, whatever
    the total); returns the number of records.

    >>> import io
    >>> buf = io.StringIO()
    >>> write_json_array([pd.DataFrame({"id": ["a"]}), pd.DataFrame({"id": ["b"]})], buf), buf.getvalue()
    (2, '[\\n{"id":"a"},\\n{"id":"b"}\\n]\\n')
    """
    n = 0
    fh.write("[")
    for df in frames:
        if not len(df):
            continue
        # JSON escapes every newline inside a string, so each newline of the JSON-lines text ends a record
        text = df.to_json(orient="records", lines=True, force_ascii=False, date_format="iso", default_handler=str)
        fh.write(("," if n else "") + "\n" + ",\n".join(text.rstrip("\n").split("\n")))
        n += len(df)
    fh.write("\n]\n")
    return n


_JSON_FRAME_ROWS = 10_000  # rows converted to JSON text at a time by write_table


def read_table(path: PathLike, *, format: str = "auto", encoding: str | None = None) -> pd.DataFrame:
    """Read a whole CSV/TSV/Parquet/JSONL/JSON file into a DataFrame (CSV cells and JSON numbers kept as
    written, as strings), with ``_row`` the line/record number of each row.

    Raises:
        InvalidInputError: some rows could not be parsed (use :func:`read_feedback` to route those rows
            to the rejected rows instead); InputFileError: the file cannot be read at all.
    """
    chunks = list(iter_table_chunks(path, chunk_size=1_000_000, format=format, encoding=encoding))
    df = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=["_row"])
    if "_error" in df.columns:
        bad = df[df["_error"].notna()]
        if len(bad):
            first = "; ".join(f"row {r}: {e}" for r, e in zip(bad["_row"].head(3), bad["_error"].head(3)))
            raise InvalidInputError(f"{len(bad)} rows of {path} cannot be parsed ({first}); fix them, or read the file "
                                    "with read_feedback, which sends such rows to the rejected rows")
        df = df.drop(columns=["_error", "_raw"])
    return df


def iter_table_chunks(path: PathLike, chunk_size: int = 10_000, *, format: str = "auto",
                      encoding: str | None = None) -> Iterator[pd.DataFrame]:
    """Stream a table in raw chunks of at most ``chunk_size`` rows without loading the whole file.

    Each chunk carries ``_row`` (the 1-based line of the record in CSV/JSONL, its record number in
    JSON/Parquet); rows that could not be parsed also carry ``_error`` (why) and ``_raw`` (their text).
    """
    fmt = sniff_format(path) if format == "auto" else format
    if fmt in VENDOR_FORMATS:
        yield from iter_export(path, fmt, encoding=encoding, chunk_size=chunk_size)
    else:
        yield from iter_table(path, fmt, encoding=encoding, chunk_size=chunk_size)


# OWASP CSV injection: a cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# RFC 4180 line ends: the csv writer then quotes any cell holding a CR, which "\n" alone would leave bare
CSV_LINE_END = "\r\n"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise_formula(value: object) -> object:
    r"""Prefix ``'`` to a text cell that a spreadsheet would read as a formula (OWASP's CSV-injection advice);
    plain numbers such as ``-5`` are left alone, other values pass through.

    >>> print(neutralise_formula('=HYPERLINK("http://x","click")'), neutralise_formula("-5"), neutralise_formula(3))
    '=HYPERLINK("http://x","click") -5 3
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _is_listlike(v: object) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


LIST_SEP = "|"  # joins a list (a row's tags) into one CSV cell; a tag id may not hold it


def _csv_cell(v: object) -> object:
    """Lists become ``|``-joined strings, maps a JSON object (CSV has no nested values)."""
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, default=str)
    if _is_listlike(v):
        items = list(cast(Iterable[Any], v))
        if items and all(isinstance(x, tuple) and len(x) == 2 for x in items):  # a Parquet map read back
            return json.dumps(dict(items), ensure_ascii=False, default=str)
        values = list(map(str, items))
        ambiguous = next((x for x in values if LIST_SEP in x), None)
        if ambiguous is not None:  # "a|b" joined with "c" reads back as three values: refuse, never guess
            raise InvalidInputError(f"the value {quoted(ambiguous)} holds {LIST_SEP!r}, the separator that joins a "
                                    "list into one CSV cell, so the cell would read back as other values; write "
                                    ".jsonl, .json or .parquet, which keep lists as lists")
        return LIST_SEP.join(values)
    return v


def _map_cells(values: pd.Series, fn: Callable[[Any], object]) -> pd.Series:
    """``values.map(fn)`` without pandas' type inference: ``Series.map`` made integers beside a missing value
    (a Parquet integer column with a null) float, so ``7`` was written ``7.0``."""
    return pd.Series([fn(v) for v in values], index=values.index, dtype=object)


def csv_ready(df: pd.DataFrame, *, raw_csv: bool = False) -> pd.DataFrame:
    """The frame as CSV cells: nested values flattened and, unless ``raw_csv``, formulas neutralised
    (column names included)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("str", "string"):
            try:
                out[col] = _map_cells(out[col], _csv_cell)
            except InvalidInputError as exc:
                raise InvalidInputError(f"column {quoted(str(col))}: {exc}") from None
            if not raw_csv:
                out[col] = _map_cells(out[col], neutralise_formula)
    if not raw_csv:
        out.columns = [neutralise_formula(str(c)) for c in out.columns]
    return out


def _map_columns(df: pd.DataFrame) -> dict[str, object]:
    """Arrow types for columns of ``{str: number}`` dicts: a real map column, not a JSON string."""
    import pyarrow as pa

    types = {}
    for col in df.columns:
        values = [v for v in df[col].tolist() if v is not None]
        if values and all(isinstance(v, dict) for v in values) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for v in values for x in v.values()):
            types[col] = pa.map_(pa.string(), pa.float64())
    return types


def write_table(df: pd.DataFrame, path: PathLike, *, raw_csv: bool = False) -> Path:
    """Write a DataFrame as CSV, TSV, Parquet, JSON lines or a JSON array (by the file name), atomically: a temp file beside
    ``path`` is renamed onto it once complete.

    List columns survive Parquet and JSONL as lists and CSV as ``|``-joined strings; ``{tag: probability}``
    columns become a map column in Parquet, an object in JSONL and a JSON string in CSV. CSV cells that a
    spreadsheet would run as formulas (``=``, ``+``, ``-``, ``@``, tab, CR first) get a leading ``'`` unless
    ``raw_csv``.
    """
    from ._atomic import atomic_file

    path = Path(path)
    fmt = table_format(path)
    if df.columns.has_duplicates:  # JSON objects and Parquet cannot hold them, and a CSV would not read back
        dups = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise InvalidInputError(f"column(s) {quoted_list(dups)} appear twice: an output needs unique column names; "
                                "rename them")
    with atomic_file(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa

            maps = _map_columns(df)
            if maps:
                table = pa.Table.from_pandas(df.drop(columns=list(maps)), preserve_index=False)
                for col, typ in maps.items():
                    arr = pa.array([None if v is None else list(v.items()) for v in df[col]], type=typ)
                    table = table.append_column(col, arr)
                table = table.select([str(c) for c in df.columns])
                import pyarrow.parquet as pq

                pq.write_table(table, tmp)
            else:
                try:
                    df.to_parquet(tmp, index=False)
                except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
                    raise _unstorable(df, exc) from None
        elif fmt == "jsonl":
            # values JSON has no type for (a Fraction) are written as their text, as CSV writes them
            with open_text_output(tmp) as fh:  # not pandas' own gzip: it stores the temp name and the time
                df.to_json(fh, orient="records", lines=True, date_format="iso", force_ascii=False,
                           default_handler=str)
        elif fmt == "json":
            with open_text_output(tmp) as fh:
                write_json_array((df.iloc[i:i + _JSON_FRAME_ROWS] for i in range(0, len(df), _JSON_FRAME_ROWS)), fh)
        else:
            with open_text_output(tmp) as fh:
                csv_ready(df, raw_csv=raw_csv).to_csv(fh, index=False, sep="\t" if fmt == "tsv" else ",",
                                                      lineterminator=CSV_LINE_END)
    return path


def _unstorable(df: pd.DataFrame, exc: BaseException) -> InvalidInputError:
    """The error of a frame that Parquet cannot store, naming the first column that fails on its own."""
    import pyarrow as pa

    for col in df.columns:
        try:
            pa.array(df[col], from_pandas=True)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            kinds = sorted({type(v).__name__ for v in df[col] if v is not None})
            return InvalidInputError(f"column {quoted(str(col))} holds values Parquet cannot store ({', '.join(kinds[:5])}: "
                                     f"{str(exc)[:120]}); convert them, or write .csv or .json")
    return InvalidInputError(f"Parquet cannot store this table: {str(exc)[:200]}")


# --- values ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_MONEY = re.compile(r"[\s$€£¥_']|\b(?:usd|eur|gbp|chf)\b", re.I)  # currency marks and digit-group spaces
_GROUPED = re.compile(r"\d{1,3}(?:([,.])\d{3})(?:\1\d{3})*")  # 1,234,567 or 1.234.567: thousands only


def _amount(text: str) -> float:
    """An amount as written in a spreadsheet, US or European: ``$1,200.50``, ``1.200,50 €``, ``1 200``,
    ``1,5`` (one and a half). Separators that cannot be told apart (``1,2345``) are refused, never guessed:
    stripping every comma read "1,5" as 15 and "1.200,50" as 1.2005.

    >>> [_amount(t) for t in ("$1,200.50", "1.200,50 €", "1,5", "1.234.567", "12.5", "+3")]
    [1200.5, 1200.5, 1.5, 1234567.0, 12.5, 3.0]
    """
    body = _MONEY.sub("", text)
    sign, digits = (body[0].replace("+", ""), body[1:]) if body.startswith(("-", "+")) else ("", body)
    if "," in digits and "." in digits:  # the last one is the decimal mark, the other groups thousands
        point = "," if digits.rfind(",") > digits.rfind(".") else "."
        whole, _, frac = digits.rpartition(point)
        if not _GROUPED.fullmatch(whole) and not whole.isdigit() or not frac.isdigit():
            raise ValueError("mixed separators")
        return float(f"{sign}{whole.replace(',', '').replace('.', '')}.{frac}")
    # "1,200", "1.234.567": thousands. The two forms that read both ways keep the US (and machine) reading:
    # "1,200" is 1200 and a lone "1.200" is 1.2 (below).
    if _GROUPED.fullmatch(digits) and digits.count(".") != 1:
        return float(sign + digits.replace(",", "").replace(".", ""))
    if digits.count(",") == 1:
        whole, frac = digits.split(",")
        if whole.isdigit() and frac.isdigit() and len(frac) <= 2:  # "1,5", "12,34": a decimal comma
            return float(f"{sign}{whole}.{frac}")
        raise ValueError("a comma that is neither a decimal mark nor a thousands separator")
    return float(sign + digits)


def _refuse_shuffled(X: Any, y: Any, name: str = "y", x_name: str = "X") -> None:
    """Rows are paired by position, as in scikit-learn. When X and y are pandas objects whose indexes hold the
    same labels in another order (one of them was sorted or shuffled), that pairs texts with other rows'
    labels (ids, dates, accounts) without a word: refused, naming the fix. Shared by tagging, duplicates and
    themes."""
    xi = X.index if isinstance(X, (pd.Series, pd.DataFrame)) else None
    yi = y.index if isinstance(y, (pd.Series, pd.DataFrame)) else None
    if xi is None or yi is None or len(xi) != len(yi) or xi.equals(yi):
        return
    # a repeated label (pd.concat of two frames keeps both indexes): the same labels as many times each, in
    # another order, is the same shuffle (it was let through, and paired rows with other rows' labels)
    repeated = xi.has_duplicates or yi.has_duplicates
    if (Counter(xi.tolist()) == Counter(yi.tolist())) if repeated else yi.isin(xi).all():
        what = "labels" if name == "y" else name
        raise InvalidInputError(f"{x_name} and {name} have the same index labels in another order: rows are paired "
                                f"by position (as in scikit-learn), which would give texts the {what} of other rows; "
                                f"align them first ({name} = {name}.loc[{x_name}.index]) or reset both indexes")


def _one_per_row(values: Any, name: str) -> list[Any]:
    """``values``, one per row, as a list (a one-shot iterator read once). InvalidInputError for a string or bytes
    (its letters were read as the rows: ``ids="abc"`` named three items a, b and c), a set (no order to match the
    rows by), a mapping (keys or values?), a DataFrame or something that is no sequence, or a 2-D array.

    >>> _one_per_row(iter(["a", "b"]), "ids")
    ['a', 'b']
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) or isinstance(values, pd.DataFrame):
        raise InvalidInputError(f"{name} must hold one value per item (a list, array or Series), got "
                                f"{type(values).__name__} {quoted(values)}")
    if isinstance(values, (set, frozenset, Mapping)):
        raise InvalidInputError(f"{name} is a {type(values).__name__}, which has no order: pass its values as a "
                                "list or Series, in the order of the items")
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D (one value per item), got shape {values.shape}")
    return list(values)  # not tolist(): a datetime64 array's tolist() is nanosecond integers


def _placeholder_list(placeholders: Iterable[str] | None) -> list[str]:
    """The placeholder cells, as strings: ``placeholders="N/A"`` made the letters n, a and "/" placeholders (the
    ids "a" and "n" were rejected as missing, and "N/A" was kept as a text); ``[None]`` was an AttributeError.

    >>> _placeholder_list(("N/A", "-"))
    ['N/A', '-']
    """
    if placeholders is None:
        return list(PLACEHOLDERS)
    if isinstance(placeholders, (str, bytes)) or not isinstance(placeholders, Iterable):
        raise InvalidInputError(f"placeholders must be a list of strings, such as ['N/A', '-'] (or () for none), got "
                                f"{type(placeholders).__name__} {quoted(placeholders)}")
    values = list(placeholders)
    odd = [v for v in values if not isinstance(v, str)]
    if odd:
        raise InvalidInputError(f"placeholders must be strings (cells read as no value); got {quoted(odd[0])} "
                                f"({type(odd[0]).__name__})")
    return values


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def parse_timestamp(value: Any) -> pd.Timestamp | None:
    """A UTC timestamp from an ISO string, a date, or Unix epoch seconds/milliseconds/microseconds.

    Returns None for a missing value; raises ValueError for one that does not parse. Strings without a
    time zone are taken as UTC.

    >>> parse_timestamp("1700000000.000200"), parse_timestamp(1700000000123)
    (Timestamp('2023-11-14 22:13:20.000200+0000', tz='UTC'), Timestamp('2023-11-14 22:13:20.123000+0000', tz='UTC'))
    >>> str(parse_timestamp("2026-03-01T09:30:00+02:00"))
    '2026-03-01 07:30:00+00:00'
    """
    if _missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float, np.integer, np.floating)) or (isinstance(value, str) and _NUMBER.match(value.strip())):
        text = str(value).strip()
        if len(text) == 8 and text.isdigit():  # 20260131: a compact date, not a 1970 epoch
            ts = pd.Timestamp(text)
        else:
            x = float(text)
            if not math.isfinite(x):
                raise ValueError("not a finite number")
            unit = "s" if abs(x) < 1e11 else "ms" if abs(x) < 1e14 else "us" if abs(x) < 1e17 else "ns"
            ts = pd.Timestamp(int(x), unit="ns", tz="UTC") if unit == "ns" else pd.Timestamp(x, unit=unit, tz="UTC")
            if unit == "s" and "." in text:  # keep Slack's microseconds exactly (a float loses them)
                whole, frac = text.split(".")
                ts = pd.Timestamp(int(whole), unit="s", tz="UTC") + pd.Timedelta(microseconds=int((frac + "000000")[:6]))
        return _in_utc(ts)
    if isinstance(value, (pd.Timestamp, datetime, date, np.datetime64)):
        ts = pd.Timestamp(value)
    elif isinstance(value, str):
        text = value.strip()
        if not any(ch.isdigit() for ch in text):  # "now", "today", "yesterday" are not times of an event
            raise ValueError(f"no date in {quoted_cell(text)}")
        if (m := _NUMERIC_DATE.match(text)) is not None:
            text = _month_first(text, m)
        ts = pd.Timestamp(_GMT_OFFSET.sub(_iso_offset, text))
    else:
        raise ValueError(f"a {type(value).__name__} is not a time")
    if ts is pd.NaT:
        return None
    return _in_utc(ts)


# "GMT+1" (Google Forms' CSV), "UTC+05:30", "GMT+0100 (CET)" (JavaScript's Date.toString()): pandas (dateutil)
# reads the sign the POSIX way, as UTC-1, so 09:12 GMT+1 became 10:12 UTC instead of 08:12, two hours off
_GMT_OFFSET = re.compile(r"(?<![A-Za-z])(?:GMT|UTC)\s*([+-])(\d{1,2})(?::?(\d{2}))?(?!\d)")


def _iso_offset(m: re.Match[str]) -> str:
    return f"{m[1]}{int(m[2]):02d}:{m[3] or '00'}"


def _in_utc(ts: pd.Timestamp) -> pd.Timestamp:
    # year 0 ("0000-01-01", a placeholder) lies before Python's dates: pandas parsed it, then turned it into
    # 1972-01-01 when the column was built
    if ts.year < 1:
        raise ValueError(f"year {ts.year} is no date (a placeholder such as 0000-01-01?)")
    # a Parquet or DataFrame time past year 9999 (microseconds reach year 294,000) came out of the column
    # wrapped around: 34089-12-30 was stored as 1970-12-30 without a word
    if ts.year > 9999:
        raise ValueError(f"year {ts.year} lies beyond 9999, the last year a date can have here")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# pandas reads "01/02/2026" month first but "13/01/2026" day first (the only reading left), so one column could
# mix both orders without a word; and it read the European "01.02.2026" as 2 January. Slash dates are read
# month first (US) and dotted dates day first (Germany and most of Europe), always; a date only the other order
# can read is rejected, never read differently from its neighbours.
_NUMERIC_DATE = re.compile(r"(\d{1,2})([/.])(\d{1,2})\2(\d{4}|\d{2})(?=$|[ T])")


class DateOrderError(ValueError):
    """A numeric date that only the other day/month order can read (``13/01/2026`` read month first)."""


def _month_first(text: str, m: re.Match[str]) -> str:
    """``text`` with its numeric date written month first (the order pandas reads), checked.

    >>> _month_first("31.12.2026 10:00", _NUMERIC_DATE.match("31.12.2026 10:00"))
    '12/31/2026 10:00'
    """
    a, sep, b, year = int(m[1]), m[2], int(m[3]), m[4]
    day_first = sep == "." or _config.date_order() == "dmy"
    month, day = (b, a) if day_first else (a, b)
    if not 1 <= month <= 12 and 1 <= day <= 12:
        if sep == ".":
            raise DateOrderError(f"{quoted(text)} is not a day.month.year date (dotted dates are read day first): "
                                 "write dates as YYYY-MM-DD")
        other = "mdy" if day_first else "dmy"
        raise DateOrderError(f"{quoted(text)} is not a {'day/month' if day_first else 'month/day'}/year date (slash "
                             f"dates are read {'day' if day_first else 'month'} first): write dates as YYYY-MM-DD, "
                             f"or set FEEDBACK_NLP_DATE_ORDER={other} if the whole file writes them "
                             f"{'month' if day_first else 'day'} first")
    return f"{month:02d}/{day:02d}/{year}{text[m.end():]}"


def to_utc_times(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A column's UTC times by :func:`parse_timestamp`'s rules (ISO, epochs; slash dates month first, dotted
    dates day first), and where a value given does not parse; empty cells are missing times. Scoring, themes
    and the report read times with it: pandas' ``format="mixed"`` read 13/01/2026 day first beside month-first
    01/02/2026, and "now" as the moment of reading.

    >>> ts, bad = to_utc_times(pd.Series(["2026-01-02", "01/03/2026", "", "13/01/2026", None]))
    >>> ts.dt.strftime("%m-%d").tolist(), bad.tolist()
    (['01-02', '01-03', nan, nan, nan], [False, False, False, True, False])
    """
    _config.date_order()  # a bad FEEDBACK_NLP_DATE_ORDER is an error of the run, not of each value
    # numbers are epochs, read by parse_timestamp: given to format="ISO8601" they printed pandas' deprecation
    # warning ("will be interpreted as epochs via 'unit'") on every call of theme_scores, themes and the report
    if values.dtype.kind in "iufb":
        fast = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    else:
        number = values.map(lambda v: isinstance(v, (numbers.Number, np.number))) if values.dtype == object else None
        given = values.where(~number) if number is not None and number.any() else values
        fast = pd.to_datetime(given, utc=True, errors="coerce", format="ISO8601")
        fast = fast.where(~(fast.dt.year < 1))  # year 0 ("0000-01-01"): parse_timestamp refuses it by name
    out: list[Any] = list(fast)
    bad = [False] * len(values)
    raw = values.tolist()
    for i in np.flatnonzero(pd.isna(fast).to_numpy()):
        value = raw[i]
        if _missing(value) or (isinstance(value, str) and not value.strip()):
            continue
        try:
            ts = parse_timestamp(value)
            out[i] = pd.NaT if ts is None else ts
        except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
            bad[i] = True
    return (pd.to_datetime(pd.Series(out, index=values.index, dtype=object), utc=True),
            pd.Series(bad, index=values.index, dtype=bool))


_ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")


def _free_name(name: str, *taken: Iterable[Any]) -> str:
    """``name.1`` (or ``.2``, …): the first such name no column in ``taken`` has."""
    used = {str(c) for cols in taken for c in cols}
    k = 1
    while f"{name}.{k}" in used:
        k += 1
    return f"{name}.{k}"


def _fast_iso(values: list[Any]) -> list[Any]:
    """Parse the ISO-8601 strings of a column in one vectorised call (most exports write them); every other
    cell is left as NaT for :func:`parse_timestamp`, which decides per value."""
    out: list[Any] = [pd.NaT] * len(values)
    idx = [i for i, v in enumerate(values) if isinstance(v, str) and _ISO_LIKE.match(v)]
    if idx:
        parsed = pd.to_datetime([values[i] for i in idx], utc=True, format="ISO8601", errors="coerce")
        for i, ts in zip(idx, parsed):
            out[i] = ts if ts is pd.NaT or ts.year >= 1 else pd.NaT  # year 0: parse_timestamp says why not
    return out


def _parse_revenue(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("a boolean is not an amount")
    # Decimal (a NUMERIC column from a database) is a number like int and float; complex is not
    x = float(value) if isinstance(value, (numbers.Real, Decimal, np.number)) else _amount(str(value))
    if not math.isfinite(x) or x < 0:
        raise ValueError("negative or not finite")
    return x + 0.0  # "-0" is zero, not a negative zero printed as "-0.0"


def _as_text(value: Any) -> Any:
    """Cells of a typed column (Parquet, DataFrame) as their text; other kinds are left for text_problem."""
    if value is pd.NA or value is pd.NaT:
        # the missing value of a "string" column (every text column of a dask DataFrame, which converts object
        # columns to string[pyarrow]): was rejected as "text is NAType, not str", where NaN said "missing text"
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, bytes):  # a binary Parquet column: text if it decodes, else left for text_problem
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, (int, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))
    if isinstance(value, Decimal):  # a database's NUMERIC column: as written ("12.50"); NaN is missing
        return str(value) if value.is_finite() else None
    return value


def _id_key(value: Any) -> Any:
    """An id or account as the whole library compares them: the text :func:`read_feedback` stores for it (a number
    as it reads, ``1.0`` as ``1``; ``True`` as ``true``; bytes decoded), without the spaces around it, in Unicode's
    composed form. ``1``, ``1.0``, ``np.int64(1)``, ``" 1 "`` and ``"1"`` are one id, in ``tag``, the
    :class:`~feedback_nlp.dedupe.Deduper` and the accounts of :func:`~feedback_nlp.scoring.theme_scores` as at
    ingest. A missing value is None; a value of another kind (a tuple, a date) is its own key.

    >>> _id_key(1), _id_key(1.0), _id_key(" 1 "), _id_key(np.int64(1)), _id_key("007"), _id_key(float("nan"))
    ('1', '1', '1', '1', '007', None)
    """
    text = value if type(value) is str else _as_text(value)  # str first: theme_scores keys every row's account
    if _missing(text):
        return None
    if not isinstance(text, str):
        return text
    text = text.strip()
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _refuse_surrogate_ids(ids: Sequence[Any], name: str = "ids") -> None:
    """InvalidInputError for ids holding a lone surrogate (text decoded with errors="surrogateescape"): no output can
    hold them, and ``tag`` failed with pyarrow's UnicodeEncodeError building its frame, ``Deduper.save`` writing
    its items, after all the work."""
    broken = [p for p, i in enumerate(ids) if _has_surrogate(i)]
    if broken:
        raise InvalidInputError(f"{name} at positions {broken[:10]} hold lone surrogates (not valid Unicode; bytes "
                                "decoded with the wrong encoding?)")


def _float_past_exact(value: Any) -> bool:
    """A whole floating-point number of 2**53 or more: the integer it was made from is not known to the last
    digit (2**53 + 1 is stored as 2**53)."""
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and abs(value) >= 2**53


# Control, zero-width and direction-changing characters: an id holding one is another id than it shows (in a
# spreadsheet "abc\u202edef" reads "abcfed"; "a\u200bb" reads "ab"), the HTTP service refuses such ids, and a
# byte-order mark inside a file is what `cat` leaves of a second file's first bytes. Ids are never altered, so
# such a row is rejected with the character named.
_HIDDEN_IN_ID = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def _hidden_in_id(value: str) -> str | None:
    """The first character of ``_HIDDEN_IN_ID`` in an id, else None; a zero-width joiner between two symbols
    is part of an emoji (👨\u200d👩 shows one family), not hidden.

    >>> _hidden_in_id("A-17"), _hidden_in_id("\U0001F468\u200d\U0001F469"), _hidden_in_id("a\u200db")
    (None, None, '\u200d')
    """
    for m in _HIDDEN_IN_ID.finditer(value):
        i = m.start()
        if m.group() == "\u200d" and 0 < i < len(value) - 1 and _symbol(value[i - 1]) and _symbol(value[i + 1]):
            continue
        return m.group()
    return None


def _symbol(char: str) -> bool:
    return unicodedata.category(char) in ("So", "Sk") or char == "\ufe0f"


def _hidden_id_reason(value: str, char: str) -> str:
    """Why an id holding ``char`` (see ``_HIDDEN_IN_ID``) is rejected.

    >>> print(_hidden_id_reason("\ufeff42", "\ufeff"))
    id '\\ufeff42' holds U+FEFF, a byte-order mark (files joined together?): an id must read as it is
    """
    what = ("a byte-order mark (files joined together?)" if char == "\ufeff" else
            "a control character" if unicodedata.category(char) == "Cc" else "an invisible or direction-changing character")
    return f"id {quoted(value)} holds U+{ord(char):04X}, {what}: an id must read as it is"


def _preview(value: Any, limit: int = 60) -> str:
    """A short, redacted rendering of a cell for a reject reason (values can hold PII too)."""
    text = redact_pii(str(value).strip())
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _redacted(raw: Any, limit: int = 500) -> str | None:
    """The text of a rejected row for the errors file: cleaned of HTML and redacted of PII, cut short.

    The raw text is cut at a space *before* redaction so that a cut never splits an e-mail or a card
    number into a piece the redactor no longer recognises.
    """
    if not isinstance(raw, str) or "\x00" in raw:
        return None
    raw = re.sub("[\udc80-\udcff]", "\ufffd", raw)
    if len(raw) > 4 * limit:
        cut = raw.rfind(" ", 0, 4 * limit)
        raw = raw[: cut if cut > 0 else 4 * limit]
    text = clean_text(raw, strip_replies=False)
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > 0 else limit] + " …"
    return text


def _case_hint(name: str, columns: Sequence[Any], option: str) -> str:
    """``; 'Text' differs only in case: pass text_col='Text'`` when a column is the name in another case (a
    spreadsheet's "Text" header is not silently taken for "text": both may exist)."""
    def key(text: str) -> str:  # "ｔｅｘｔ" (full width, from a CJK spreadsheet) is "text" in another width
        return unicodedata.normalize("NFKC", text).casefold()

    same = [c for c in columns if isinstance(c, str) and key(c) == key(str(name))]
    if not same:
        return ""
    how = "case" if same[0].casefold() == str(name).casefold() else "character width (or case)"
    return f"; {quoted(same[0])} differs only in {how}: pass {option}={quoted(same[0])}"


# --- the validator --------------------------------------------------------------------------------

_INTERNAL = ("_row", "_error", "_raw")
_ROLES = ("id", "source", "account_id", "account_revenue", "created_at", "url", "author", "status",
          "status_changed_at", "source_detail")


class RowValidator:
    """Turns raw chunks into canonical records and rejected rows; shared by every reader.

    It keeps the ids it has accepted, so a duplicate id is rejected even when the first copy was in an
    earlier chunk (the first valid row with an id keeps it; later ones go to errors as ``duplicate id``).
    Memory grows with the number of distinct ids (tens of bytes each).

    Args:
        text_col, id_col, source_col, account_col, revenue_col, time_col: input column names; optional
            ones default to the canonical name when the input has such a column. Without an id column
            the ``row`` number becomes the id.
        columns: extra ``{input_name: canonical_name}`` mapping, applied first.
        default_source: the channel of rows without one.
        unknown_source: ``"other"`` (default) maps channels outside :data:`SOURCES` to ``other`` and keeps
            the original in ``source_detail``; ``"error"`` rejects such rows.
        placeholders: values treated as missing (default :data:`PLACEHOLDERS`; ``()`` for none).
        keep_columns: keep the non-canonical input columns after the canonical ones.
        clean: replace ``text`` by its :func:`~feedback_nlp.cleaning.clean_text` form (raw in ``raw_text``).
        max_chars: longer cleaned texts are rejected.

    Example:
        >>> v = RowValidator()
        >>> first = v.validate(pd.DataFrame({"id": ["a", "b"], "text": ["Export fails", "Login loops"]}))
        >>> second = v.validate(pd.DataFrame({"_row": [3], "id": ["a"], "text": ["Export fails again"]}))
        >>> second.rejected[["row", "id", "reason"]].values.tolist()
        [[3, 'a', 'duplicate id']]
    """

    def __init__(self, *, text_col: str = "text", id_col: str | None = None, source_col: str | None = None,
                 account_col: str | None = None, revenue_col: str | None = None, time_col: str | None = None,
                 columns: Mapping[str, str] | None = None, default_source: str = "other",
                 unknown_source: str = "other", placeholders: Iterable[str] | None = None,
                 keep_columns: bool = True, clean: bool = True, max_chars: int = MAX_TEXT_CHARS) -> None:
        if default_source not in SOURCES:
            raise InvalidInputError(f"default_source {quoted(default_source)} is not one of {SOURCES}")
        if unknown_source not in ("other", "error"):
            raise InvalidInputError(f"unknown_source must be 'other' or 'error', got {unknown_source!r}")
        if max_chars < 1:
            raise InvalidInputError(f"max_chars must be >= 1, got {max_chars}")
        self.text_col = text_col
        self.given = {"id": id_col, "source": source_col, "account_id": account_col,
                      "account_revenue": revenue_col, "created_at": time_col}
        self.columns = dict(columns or {})
        targets = list(self.columns.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:  # two input columns renamed onto one name: which one is the text? (was an AttributeError)
            raise ColumnError(f"columns= maps several input columns onto {twice}: map one column to each name")
        if set(targets) & set(_INTERNAL):
            raise ColumnError(f"columns= may not map onto the reserved names {list(_INTERNAL)}")
        self.default_source, self.unknown_source = default_source, unknown_source
        self.placeholders = frozenset(p.strip().casefold() for p in _placeholder_list(placeholders))
        self._longest = max((len(p) for p in self.placeholders), default=0) + 20  # cheap test before strip()
        self.keep_columns, self.clean, self.max_chars = keep_columns, clean, max_chars
        self._cols: dict[str, str | None] | None = None
        self._seen: set[str] = set()
        self._composed: dict[str, str] = {}  # NFC form -> the first non-ASCII id that had it
        self._rows_seen = 0
        self._sources: dict[str, tuple[str | None, str | None]] = {}

    def _resolve(self, df: pd.DataFrame) -> dict[str, str | None]:
        """Input column of each role in this chunk. Named columns and whether ids are generated are fixed by
        the first chunk with parsed rows; canonical names are looked up per chunk, because JSON records
        may carry a field only from some line on."""
        data = [c for c in df.columns if c not in ("_row", "_error", "_raw")]
        if self._cols is None:
            if self.text_col not in df.columns:
                raise ColumnError(f"text column {quoted(self.text_col)} not found; available columns: "
                                  f"{quoted_list(data)}{_case_hint(self.text_col, data, 'text_col')}")
            for role in _ROLES:
                given = self.given.get(role)
                if given is not None and given not in df.columns:
                    raise ColumnError(f"{role.replace('_', ' ')} column {quoted(given)} not found; "
                                      f"available columns: {quoted_list(data)}{_case_hint(given, data, role + '_col')}")
            generated = self.given["id"] is None and ("id" not in df.columns or self.text_col == "id")
            self._cols = {"id": None if generated else ("id" if self.given["id"] is None else self.given["id"])}
        cols = dict(self._cols)
        for role in _ROLES:
            if role != "id":
                given = self.given.get(role)
                cols[role] = given if given is not None else (role if role in df.columns and role != self.text_col else None)
        return cols

    def _is_placeholder(self, value: Any) -> bool:
        return isinstance(value, str) and len(value) <= self._longest and value.strip().casefold() in self.placeholders

    def _id(self, value: Any) -> str | None:
        value = _as_text(value)
        if _missing(value) or not isinstance(value, str) or self._is_placeholder(value):
            return None
        return value.strip() or None

    def _source(self, value: Any) -> tuple[str | None, str | None]:
        """(canonical source or None if unknown, detail to keep)."""
        if _missing(value) or self._is_placeholder(value) or not str(value).strip():
            return self.default_source, None
        key = str(value)
        if key not in self._sources:
            v = key.strip().lower()
            canon = v if v in SOURCES else _SOURCE_ALIASES.get(v.replace("-", "_"), _SOURCE_ALIASES.get(v))
            self._sources[key] = (canon, None if canon == v else key.strip())
        return self._sources[key]

    def _optional(self, value: Any) -> Any:
        value = _as_text(value)
        if _missing(value) or self._is_placeholder(value):
            return None
        return value.strip() or None if isinstance(value, str) else value

    def validate(self, chunk: pd.DataFrame) -> FeedbackData:
        """Validate one raw chunk: canonical ``records`` and ``rejected`` rows (:data:`REJECT_COLUMNS`).

        Each row gets one reason, the first that applies: parse error, missing id, text problem, bad
        source/revenue/date, then duplicate id (last, so that only an otherwise valid row claims an id).
        """
        df = chunk.rename(columns=self.columns) if self.columns else chunk
        if self.columns and df.columns.has_duplicates:
            twice = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
            raise ColumnError(f"after renaming with columns=, the input has two columns named {twice}: drop or "
                              "rename the one you do not mean")
        n = len(df)
        rows: np.ndarray
        if "_row" in df.columns:
            rows = df["_row"].to_numpy(dtype=np.int64)
        else:  # a DataFrame: 1-based positions, continuing across calls
            rows = np.arange(self._rows_seen + 1, self._rows_seen + n + 1, dtype=np.int64)
        self._rows_seen += n
        # parse errors and raw lines are strings or missing (None or NaN, as pandas stores it)
        errors: list[str | None] = ([e if isinstance(e, str) else None for e in df["_error"]] if "_error" in df.columns
                                    else [None] * n)
        raws = [r if isinstance(r, str) else None for r in df["_raw"]] if "_raw" in df.columns else [None] * n
        if "_row" not in df.columns:  # a DataFrame: files cannot hold lone surrogates (their readers reject them)
            df = _reject_surrogates(df, errors, skip=self.text_col)
        data_columns = [c for c in df.columns if c not in _INTERNAL]
        if self._cols is None and (n > 0 and all(e is not None for e in errors) or n == 0 and not data_columns):
            # nothing parsed yet (every row broken, or no rows): reject what there is, decide columns later
            empty = pd.DataFrame(columns=["id", "text", "source", "row"])
            ids = [self._broken_id(None, r, "id" if self.given["id"] is None else self.given["id"]) for r in raws]
            return FeedbackData(empty, self._rejected(rows, ids, errors, [None] * n, raws))
        cols = self._resolve(df)

        def column(role: str) -> list[Any] | None:
            name = cols.get(role)
            if name is None:
                return None
            return df[name].tolist() if name in df.columns else [None] * n

        texts = df[self.text_col].tolist() if self.text_col in df.columns else [None] * n
        raw_ids = column("id")
        ids = [self._id(v) for v in raw_ids] if raw_ids is not None else [str(r) for r in rows]
        reasons: list[str | None] = list(errors)
        if raw_ids is not None:  # a list or object where an id belongs is not a missing id: say what it is
            for i, v in enumerate(raw_ids):
                if reasons[i] is None and ids[i] is None and isinstance(v, (list, tuple, dict, np.ndarray)):
                    reasons[i] = f"id is a {type(v).__name__} ({_preview(v, 30)}), not a single value"
                elif reasons[i] is None and ids[i] is None and not _missing(t := _as_text(v)) and \
                        not isinstance(t, (str, bytes)):
                    # a datetime column chosen as the id (Parquet) was reported as "missing id"
                    reasons[i] = f"id is a {type(v).__name__} ({_preview(v, 30)}), not a text or a number"
                elif reasons[i] is None and ids[i] is None and isinstance(v, bytes) and v:
                    # a binary Parquet id that is no UTF-8 was reported as "missing id"
                    reasons[i] = f"id is bytes not valid in UTF-8 ({_preview(v, 30)})"
                elif reasons[i] is None and _float_past_exact(v):
                    # an integer id column made float by one missing value (pandas): 1790000000000000001 and
                    # ...002 both read 1.79e+18, one row tagged under an id it never had, the other a "duplicate"
                    reasons[i] = (f"id {ids[i]} is a floating-point number of 2**53 or more, whose last digits are "
                                  "lost (an integer id column made float by a missing value?): store ids as text "
                                  "or as integers (pandas' Int64)")
                elif reasons[i] is None and ids[i] is None and isinstance(v, str) and v.strip():
                    # "NA", "null", "-": the bare "missing id" left a user looking at a cell that holds something
                    reasons[i] = f"missing id (the cell {v.strip()[:30]!r} is a placeholder for no value)"
        cleaned = self._check_texts(ids, texts, reasons)
        out: dict[str, Any] = {"id": ids, "text": cleaned if self.clean else texts}
        out["source"], details = self._map_sources(column("source"), column("source_detail"), reasons, n)
        for role in ("account_id", "url", "author", "status"):
            values = column(role)
            if values is not None:
                out[role] = [self._optional(v) for v in values]
                if self.clean and role in ("url", "author"):
                    # redacted like the text: a page URL carries reset tokens and e-mails in its query, and an
                    # author is often an address ("jane@acme.io") when the source has no name; names stay
                    out[role] = [redact_pii(v) if isinstance(v, str) else v for v in out[role]]
        accounts = column("account_id")
        for i, v in enumerate(accounts if accounts is not None else ()):
            if reasons[i] is None and isinstance(v, (list, tuple, dict, set, np.ndarray)):
                # a JSON list or object as the account: themes and demand scores count accounts, and one that
                # cannot be counted stopped them after all the embedding ("unhashable type: 'list'")
                reasons[i] = f"account_id is a {type(v).__name__} ({_preview(v, 30)}), not a single value"
        revenue = column("account_revenue")
        if revenue is not None:
            out["account_revenue"] = self._revenues(revenue, str(cols["account_revenue"]), reasons)
        for role in ("created_at", "status_changed_at"):
            values = column(role)
            if values is not None:
                out[role] = self._times(values, str(cols[role]), reasons)
        out["row"] = rows
        if any(d is not None for d in details) or cols.get("source_detail"):
            out["source_detail"] = details
        if self.clean:
            out["raw_text"] = texts
        self._claim_ids(ids, reasons)
        records = pd.DataFrame(out)
        if self.keep_columns:
            used = {self.text_col, *(c for c in cols.values() if c)}
            extra = [c for c in data_columns if c not in used]
            if extra:  # one concat: a column at a time is quadratic on wide exports (thousands of columns)
                # an input column named like one the reader adds (row, raw_text) was dropped
                # without a word; it is kept as "row.1", as pandas names the second of two equal headers
                names = [_free_name(c, records.columns, data_columns) if c in records.columns else c for c in extra]
                kept = pd.DataFrame({n: df[c].to_numpy() for c, n in zip(extra, names)}, columns=names)
                records = pd.concat([records, kept], axis=1)
        bad = np.array([r is not None for r in reasons], dtype=bool)
        # the id of a row that did not parse comes from fields that may be misaligned: redact it, and
        # for a broken JSON line read it from the raw text when the parser could not
        rej_ids = [ids[i] if errors[i] is None else self._broken_id(ids[i] if raw_ids else None, raws[i], "id" if self.given["id"] is None else self.given["id"])
                   for i in range(n)]
        rejected = self._rejected(rows[bad], [x for x, b in zip(rej_ids, bad) if b], [r for r in reasons if r is not None],
                                  [t for t, b in zip(texts, bad) if b], [r for r, b in zip(raws, bad) if b])
        return FeedbackData(records[~bad].reset_index(drop=True), rejected)

    def _check_texts(self, ids: list[str | None], texts: list[Any], reasons: list[str | None]) -> list[str | None]:
        """Clean every text of a row still valid, recording why a row is rejected; returns the cleaned texts."""
        cleaned: list[str | None] = [None] * len(texts)
        for i, reason in enumerate(reasons):
            if reason is not None:
                continue
            if ids[i] is None:
                reasons[i] = "missing id"
                continue
            if (hidden := _hidden_in_id(cast(str, ids[i]))) is not None:
                reasons[i] = _hidden_id_reason(cast(str, ids[i]), hidden)
                continue
            t = texts[i] = _as_text(texts[i])
            if self._is_placeholder(t):
                reasons[i] = f"placeholder text {quoted(t.strip())}"
                continue
            c = clean_text(t) if isinstance(t, str) and "\x00" not in t else None
            problem = text_problem(t, c, max_chars=self.max_chars)
            if problem is None and c is not None and c.casefold() in self.placeholders:
                problem = f"placeholder text {quoted(c)}"  # e.g. "<p>N/A</p>"
            reasons[i], cleaned[i] = problem, (c if problem is None else None)
            if problem is not None and isinstance(t, str) and not t.isascii():
                # a rejected text with lone surrogates cannot go into a string column (pyarrow refuses to
                # encode it): the errors file shows U+FFFD where the undecodable characters were
                texts[i] = _SURROGATE.sub("\ufffd", t)
        return cleaned

    def _map_sources(self, values: list[Any] | None, details: list[Any] | None, reasons: list[str | None],
                 n: int) -> tuple[list[str], list[Any]]:
        """Canonical sources and the details kept beside them (an unknown channel's own name)."""
        details = [self._optional(d) for d in details] if details is not None else [None] * n
        if values is None:
            return [self.default_source] * n, details
        canon = []
        for i, v in enumerate(values):
            c, detail = self._source(v)
            if c is None:
                if self.unknown_source == "error" and reasons[i] is None:
                    reasons[i] = f"unknown source {_preview(v)} (expected one of {', '.join(SOURCES)})"
                c = "other"
            if detail is not None and details[i] is None:
                details[i] = detail
            canon.append(c)
        return canon, details

    def _blank(self, value: Any) -> bool:
        return _missing(value) or self._is_placeholder(value) or (isinstance(value, str) and not value.strip())

    def _revenues(self, values: list[Any], name: str, reasons: list[str | None]) -> list[float]:
        parsed = []
        for i, v in enumerate(values):
            v = _as_text(v)
            try:
                parsed.append(np.nan if self._blank(v) else _parse_revenue(v))
            except (ValueError, TypeError):
                parsed.append(np.nan)
                if reasons[i] is None:
                    reasons[i] = f"revenue {_preview(v)} in column {quoted(name)} is not a non-negative number"
        return parsed

    def _times(self, values: list[Any], name: str, reasons: list[str | None]) -> pd.Series:
        _config.date_order()  # a bad FEEDBACK_NLP_DATE_ORDER stops the run here, not as a reason on every row
        parsed = _fast_iso(values)  # most exports write ISO 8601: one vectorised call
        for i, v in enumerate(values):
            if parsed[i] is not pd.NaT or self._blank(v):
                continue
            try:
                ts = parse_timestamp(v)
                parsed[i] = pd.NaT if ts is None else ts
            except DateOrderError as exc:
                if reasons[i] is None:
                    reasons[i] = f"date in column {quoted(name)}: {exc}"
            except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
                if reasons[i] is None:
                    reasons[i] = f"unparseable date {_preview(v)} in column {quoted(name)}"
        return pd.to_datetime(pd.Series(parsed, dtype=object), utc=True).reset_index(drop=True)

    def claim(self, ids: list[str]) -> None:
        """Hold ``ids`` as taken by rows before these (another partition's, in a distributed job): a later row with
        one of them, in either Unicode form, is a "duplicate id", as within one job."""
        self._claim_ids(list(ids), [None] * len(ids))

    def _claim_ids(self, ids: list[str | None], reasons: list[str | None]) -> None:
        for i, reason in enumerate(reasons):
            if reason is None:
                value = cast(str, ids[i])
                if value in self._seen:
                    reasons[i] = "duplicate id"
                    continue
                if not value.isascii():
                    # "café" composed and decomposed: one id to anyone reading the output, two to a dict
                    first = self._composed.setdefault(unicodedata.normalize("NFC", value), value)
                    if first != value:
                        reasons[i] = f"duplicate id: {quoted(first)} in another Unicode form (composed vs decomposed accents)"
                        continue
                self._seen.add(value)

    @staticmethod
    def _broken_id(value: str | None, raw: str | None, id_col: str | None) -> str | None:
        if value is None and raw is not None and id_col is not None:
            m = re.search(rf'"{re.escape(id_col)}"\s*:\s*(?:"((?:[^"\\]|\\.){{1,200}})"|(-?[0-9][0-9.eE+-]{{0,40}}))', raw)
            value = (m.group(1) or m.group(2)) if m else None
        return None if value is None else redact_pii(value)

    @staticmethod
    def _rejected(rows: Sequence[int] | np.ndarray, ids: list[str | None], reasons: list[str | None], texts: list[Any],
                  raws: list[Any]) -> pd.DataFrame:
        return pd.DataFrame({
            "row": np.asarray(rows, dtype=np.int64),
            "id": pd.Series(ids, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
            "text": pd.Series([_redacted(r if r is not None else t) for t, r in zip(texts, raws)], dtype=object),
        }, columns=list(REJECT_COLUMNS))


# --- reading --------------------------------------------------------------------------------------

def _encodes(values: list[Any]) -> bool:
    """Whether the strings among ``values`` are valid Unicode (one encode for the column: the usual case)."""
    try:
        "".join(v for v in values if isinstance(v, str)).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_surrogates(df: pd.DataFrame, errors: list[str | None], skip: str) -> pd.DataFrame:
    """A frame given in Python whose cells hold a lone surrogate (text decoded with errors="surrogateescape",
    a JSON "\\ud800"): each such row gets a parse error naming the column, and the cells are shown escaped.
    Building the chunk with one failed the whole read with a UnicodeEncodeError (an id, an author: any column
    but the text ``skip``, which is checked as a text)."""
    hit: dict[Any, np.ndarray] = {}
    for c in df.columns:
        if df[c].dtype == object and c != skip and not _encodes(df[c].tolist()):
            found = df[c].map(_has_surrogate).to_numpy(dtype=bool)
            if found.any():
                hit[c] = found
    if not hit:
        return df
    df = df.copy()
    for c, found in hit.items():
        for i in np.flatnonzero(found):
            if errors[i] is None:
                errors[i] = f"a lone surrogate (\\udXXX) in column {quoted(str(c))}: not valid Unicode text"
        df[c] = [v.encode("utf-8", "backslashreplace").decode("utf-8") if f else v for v, f in zip(df[c], found)]
    return df


def _slices(frame: pd.DataFrame, chunk_size: int) -> Iterator[pd.DataFrame]:
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be >= 1, got {chunk_size}")
    if len(frame) == 0:
        yield frame
    for start in range(0, len(frame), chunk_size):
        yield frame.iloc[start:start + chunk_size].reset_index(drop=True)


def _unique_labels(labels: Iterable[Any]) -> list[Any]:
    """Repeated column labels renamed ``text``, ``text.1``, … as a CSV header's are: a frame with two
    ``text`` columns reads like the same CSV file, instead of failing on an ambiguous column.

    >>> _unique_labels(["id", "text", "text", "text"])
    ['id', 'text', 'text.1', 'text.2']
    """
    names: list[Any] = []
    for label in labels:
        name, k = label, 1
        while name in names:
            name, k = f"{label}.{k}", k + 1
        names.append(name)
    return names


def _raw_chunks(source: PathLike | pd.DataFrame, format: str, encoding: str | None, chunk_size: int,
                skipped: dict[str, int]) -> Iterator[pd.DataFrame]:
    if format not in FORMATS:
        raise InvalidInputError(f"unknown format {quoted(format)}; expected one of {FORMATS}")
    if isinstance(source, pd.DataFrame):
        frame = source
        named = [n for n in frame.index.names if isinstance(n, str) and n not in frame.columns]
        if named:  # df.set_index("id"): the ids were dropped with the index and rows given generated ids
            frame = frame.reset_index(level=named)
        if frame.columns.has_duplicates:
            frame = frame.set_axis(_unique_labels(frame.columns), axis=1)
        reserved = [c for c in ("_error", "_raw") if c in frame.columns]
        if reserved:  # the reader's own columns: a user's "_error" column rejected every row with its value
            raise ColumnError(f"column(s) {reserved} use names feedback_nlp reserves for parse errors; rename them")
        if "_row" in frame.columns and not pd.api.types.is_integer_dtype(frame["_row"]):
            frame = frame.drop(columns="_row")
        yield from _slices(frame.reset_index(drop=True), chunk_size)
        return
    fmt = sniff_format(source) if format == "auto" else format
    if fmt in VENDOR_FORMATS:  # a chunk at a time, as the table readers: memory is the chunk, not the export
        yield from iter_export(source, fmt, encoding=encoding, chunk_size=chunk_size, skipped=skipped)
    else:
        yield from iter_table(source, fmt, encoding=encoding, chunk_size=chunk_size)


def iter_feedback(source: PathLike | pd.DataFrame, *, format: str = "auto", encoding: str | None = None,
                  chunk_size: int = 10_000, validator: RowValidator | None = None,
                  skipped: dict[str, int] | None = None, **options: Any) -> Iterator[FeedbackData]:
    """Stream a source as validated chunks (:class:`FeedbackData` each) without holding the whole file.

    ``options`` are :class:`RowValidator` arguments; pass one ``validator`` to share duplicate-id state
    across several sources. This is the path of the streaming commands and of :func:`read_feedback`.
    """
    validator = validator or RowValidator(**options)
    for raw in _raw_chunks(source, format, encoding, chunk_size, skipped if skipped is not None else {}):
        yield validator.validate(raw)


def _is_pair(source: Any) -> bool:
    """``(path or DataFrame, format)``: a source with its format (a format name that is also a file there is
    a second path)."""
    return (isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], str)
            and source[1] in FORMATS and not os.path.exists(source[1]))


def read_feedback(
    source: PathLike | pd.DataFrame | Sequence[PathLike | pd.DataFrame | tuple[PathLike, str]],
    *,
    format: str = "auto",
    encoding: str | None = None,
    text_col: str = "text",
    id_col: str | None = None,
    source_col: str | None = None,
    account_col: str | None = None,
    revenue_col: str | None = None,
    time_col: str | None = None,
    default_source: str = "other",
    unknown_source: str = "other",
    columns: Mapping[str, str] | None = None,
    placeholders: Iterable[str] | None = None,
    keep_columns: bool = True,
    clean: bool = True,
    max_chars: int = MAX_TEXT_CHARS,
) -> FeedbackData:
    """Read and validate feedback into the canonical schema.

    Args:
        source: a file (CSV/TSV/Parquet/JSONL/JSON, or a vendor export), a DataFrame, or a list of them
            (read into one frame with a ``source_file`` column; ids must be unique across them); a list
            item may be a ``(path, format)`` pair.
        format: ``auto`` (by extension and content) or one of :data:`FORMATS`: ``slack`` (an export zip
            or folder), ``zendesk`` (tickets JSON/JSONL), ``intercom`` (conversations JSON),
            ``survey`` (a wide survey CSV: one row per non-empty free-text answer), ``google_play`` (a Play
            Console reviews report), ``github`` (issues JSON from the REST API or ``gh``), ``app_store`` (App Store
            Connect customer reviews JSON).
        encoding: the text encoding of CSV/JSON files (default UTF-8; a BOM is honoured, UTF-16 with a
            BOM is detected). An undeclared file that is not UTF-8 is refused with the first bad byte
            and line; with a declared encoding, rows holding invalid bytes are rejected.
        text_col, id_col, source_col, account_col, revenue_col, time_col, columns, default_source,
        unknown_source, placeholders, keep_columns, clean, max_chars: see :class:`RowValidator`.

    Returns:
        :class:`FeedbackData`: ``records`` (valid rows, canonical columns first, then ``row`` and
        provenance) and ``rejected`` (:data:`REJECT_COLUMNS`: ``row, id, reason, text``).

    Raises:
        ColumnError: a named column is missing. InputFileError: the file cannot be read as a whole
            (missing, a folder, empty without a header, truncated Parquet, undeclared non-UTF-8 bytes).
    """
    validator = RowValidator(text_col=text_col, id_col=id_col, source_col=source_col, account_col=account_col,
                             revenue_col=revenue_col, time_col=time_col, columns=columns,
                             default_source=default_source, unknown_source=unknown_source,
                             placeholders=placeholders, keep_columns=keep_columns, clean=clean, max_chars=max_chars)
    # read_feedback(("export.zip", "slack")): one source and its format, as in a list (it was read as two paths)
    many = isinstance(source, (list, tuple)) and not _is_pair(source)
    sources = list(cast(Sequence[Any], source)) if many else [source]
    if many and not sources:
        raise InvalidInputError("read_feedback was given an empty list of sources")
    records, rejected = [], []
    skipped: dict[str, int] = {}
    for item in sources:
        if isinstance(item, tuple) and len(item) != 2:  # ("a.csv",) was a ValueError (values to unpack)
            raise InvalidInputError(f"a source given as a tuple is a (path, format) pair, such as ('export.zip', "
                                    f"'slack'); got {_preview(item)}")
        item, item_format = item if isinstance(item, tuple) else (item, format)
        if not isinstance(item, (str, os.PathLike, pd.DataFrame)):  # None, a number, a dict of one record
            raise InvalidInputError(f"read_feedback reads a file path, a DataFrame or a list of them; got "
                                    f"{type(item).__name__}" + (" (records as dicts: pass pd.DataFrame(records))"
                                                                if isinstance(item, dict) else ""))
        validator._cols = None  # each source has its own columns; ids stay shared
        validator._rows_seen = 0
        name = "DataFrame" if isinstance(item, pd.DataFrame) else str(item)
        for part in iter_feedback(item, format=item_format, encoding=encoding, chunk_size=50_000,
                                  validator=validator, skipped=skipped):
            if many:
                part.records["source_file"] = name
                part.rejected["source_file"] = name
            records.append(part.records)
            rejected.append(part.rejected)
    rec = pd.concat([r for r in records if len(r)] or records[:1], ignore_index=True)
    rej = pd.concat([r for r in rejected if len(r)] or rejected[:1], ignore_index=True)
    return FeedbackData(rec, rej, skipped)
