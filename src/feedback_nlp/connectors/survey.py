"""Wide survey exports (Typeform, SurveyMonkey, Google Forms, Qualtrics-style CSV: one row per response,
one column per question) turned into one row per non-empty free-text answer.

Free-text questions are found by their answers, not their names: columns that are not metadata (ids,
dates, e-mail, IP, names, hidden fields), not mostly numbers (NPS, ratings) and not a handful of repeated
choices. Pass ``questions=`` to choose them yourself. SurveyMonkey's second header row ("Response",
"Open-Ended Response") is recognised and folded into the question names.

Example:
    >>> export = read_survey("tests/fixtures/ingest/survey_typeform.csv")
    >>> sorted(set(export.frame["source_detail"].dropna()))  # the ragged response has none
    ["Anything else you'd like to tell us?", 'What is the one thing we should improve?']
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ColumnError, InputFileError, quoted_list
from ._export import Export
from ._tables import iter_table, sniff_table_format

__all__ = ["free_text_questions", "read_survey"]

_META = re.compile(
    r"^(?:#|id|respondent ?id|response ?id|collector ?id|token|network ?id|submission ?id|ip(?: address)?|"
    r"e-?mail(?: address)?|first ?name|last ?name|full ?name|name|custom data.*|user ?agent|ref(?:errer)?|"
    r"utm_.*|hidden.*|tags?|language|country|city|browser|device|platform|status|progress|finished|"
    r"duration.*|distribution ?channel|latitude|longitude|timestamp|"
    r"(?:start|end|submit|submitted|submission|recorded|response|created|completion)? ?(?:date|time)(?: ?\(utc\))?|"
    r"(?:submitted|started|ended|landed) ?at(?: ?\(utc\))?|date ?submitted)$",
    re.I)
_ID_COLUMNS = ("respondent id", "response id", "responseid", "#", "token", "submission id", "id")
_TIME_COLUMNS = ("submit date (utc)", "submitted at", "date submitted", "end date", "enddate", "timestamp",
                 "recorded date", "recordeddate", "submission date", "start date (utc)", "start date")
_ACCOUNT_COLUMNS = ("account_id", "account", "company", "account id", "company name")
_NUMBER = re.compile(r"^\s*[+-]?\d+(?:[.,]\d+)?\s*$")


def _answers(values: pd.Series) -> list[str]:
    return [str(v).strip() for v in values if isinstance(v, str) and v.strip()]


def free_text_questions(frame: pd.DataFrame) -> list[str]:
    """The columns of a wide survey frame whose answers are free text (see module doc for the rule)."""
    chosen = []
    for col in frame.columns:
        if col.startswith("_") or _META.match(col.strip()):
            continue
        answers = _answers(frame[col])
        if not answers:
            continue
        numeric = sum(bool(_NUMBER.match(a)) for a in answers) / len(answers)
        distinct = len(set(answers)) / len(answers)
        mean_words = sum(len(a.split()) for a in answers) / len(answers)
        # Choices repeat and are short; ratings are numbers; free text is wordy or mostly unique.
        if numeric < 0.5 and (mean_words >= 4 or (distinct >= 0.8 and mean_words >= 2 and len(answers) >= 3)):
            chosen.append(col)
    return chosen


def _find(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _fold_subheader(frame: pd.DataFrame) -> pd.DataFrame:
    """SurveyMonkey puts answer labels in a second header row; fold it into the question names."""
    if frame.empty or "_error" in frame.columns and isinstance(frame["_error"].iloc[0], str):
        return frame
    first = frame.iloc[0]
    data = [c for c in frame.columns if not c.startswith("_")]
    labels = [str(first[c]).strip().lower() if isinstance(first[c], str) else "" for c in data]
    if not any(lab in ("response", "open-ended response") for lab in labels):
        return frame
    names, last = {}, ""
    for c, lab, raw in zip(data, labels, (first[c] for c in data)):
        base = last if c.startswith("Unnamed: ") else c
        last = base
        names[c] = base if lab in ("", "response", "open-ended response") else f"{base} / {str(raw).strip()}"
    return frame.iloc[1:].rename(columns=names).reset_index(drop=True)


def read_survey(path: str | os.PathLike, *, questions: Sequence[str] | None = None,
                encoding: str | None = None) -> Export:
    """Read a wide survey CSV/TSV/Parquet/JSON into one raw row per non-empty free-text answer.

    Rows carry ``id`` (``<respondent id>-q<column number>``; the response's line when there is no
    respondent id), ``text``, ``source="survey"``, ``source_detail`` (the question), ``created_at``
    (the submit time when the export has one), ``account_id`` (a company/account column, if any) and
    ``_row`` (the response's line in the file). Empty answers are skipped and counted; a response row
    that does not parse (ragged, bad bytes) becomes one rejected row.
    """
    path = Path(path)
    fmt = sniff_table_format(path)
    chunks = list(iter_table(path, fmt, encoding=encoding, chunk_size=1_000_000))
    frame = _fold_subheader(pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame())
    if frame.empty:
        raise InputFileError(f"{path} holds no survey responses")
    if questions is None:
        questions = free_text_questions(frame)
        if not questions:
            raise InputFileError(f"{path}: no free-text question found among "
                                 f"{quoted_list(c for c in frame.columns if not c.startswith('_'))}; "
                                 "name them with read_survey(path, questions=[...])")
    else:
        missing = [q for q in questions if q not in frame.columns]
        if missing:
            raise ColumnError(f"questions {quoted_list(missing)} not found in {path}; columns: "
                              f"{quoted_list(c for c in frame.columns if not c.startswith('_'))}")
    columns = [c for c in frame.columns if not c.startswith("_")]
    id_col, time_col = _find(columns, _ID_COLUMNS), _find(columns, _TIME_COLUMNS)
    account_col = _find(columns, _ACCOUNT_COLUMNS)
    position = {c: i + 1 for i, c in enumerate(columns)}
    errors = frame["_error"] if "_error" in frame.columns else pd.Series([None] * len(frame))
    raws = frame["_raw"] if "_raw" in frame.columns else pd.Series([None] * len(frame))
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for i, (_, record) in enumerate(frame.iterrows()):  # positions: errors and raws are read with iloc
        line = int(record["_row"])
        respondent = record[id_col] if id_col and isinstance(record[id_col], str) and record[id_col].strip() else str(line)
        base = {"source": "survey", "created_at": record[time_col] if time_col else None,
                "account_id": record[account_col] if account_col else None}
        if isinstance(errors.iloc[i], str):
            rows.append({"_row": line, "_error": errors.iloc[i], "_raw": raws.iloc[i], "id": respondent.strip(), **base})
            continue
        for q in questions:
            answer = record[q]
            if not isinstance(answer, str) or not answer.strip():
                skipped["empty answer"] += 1
                continue
            rows.append({"_row": line, "_error": None, "_raw": None, "id": f"{respondent.strip()}-q{position[q]}",
                         "text": answer, "source_detail": q, **base})
    out = pd.DataFrame(rows, columns=["_row", "_error", "_raw", "id", "text", "source", "source_detail", "created_at",
                                      "account_id"])
    out = out.astype({c: object for c in out.columns if c != "_row"})
    out["_row"] = out["_row"].astype("int64")
    if account_col is None:
        out = out.drop(columns="account_id")
    if time_col is None:
        out = out.drop(columns="created_at")
    if out["_error"].isna().all():
        out = out.drop(columns=["_error", "_raw"])
    return Export(out, dict(skipped))
