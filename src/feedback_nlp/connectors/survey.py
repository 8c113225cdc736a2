"""Wide survey exports (Typeform, SurveyMonkey, Google Forms, Qualtrics-style CSV: one row per response,
one column per question) turned into one row per non-empty free-text answer.

Free-text questions are found by their answers, not their names: columns that are not metadata (ids,
dates, e-mail, IP, names, hidden fields), not mostly numbers (NPS, ratings) and not a handful of repeated
choices. Pass ``questions=`` to choose them yourself. SurveyMonkey's second header row ("Response",
"Open-Ended Response") is recognised and folded into the question names. Qualtrics' second and third header
rows (the question texts, then ``{"ImportId": ...}`` per column) are recognised too: the question texts become
the column names and the dates, written in the time zone the third row names, are read in that zone.

Example:
    >>> export = read_survey("tests/fixtures/ingest/survey_typeform.csv")
    >>> sorted(set(export.frame["source_detail"].dropna()))  # the ragged response has none
    ["Anything else you'd like to tell us?", 'What is the one thing we should improve?']
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..errors import ColumnError, InputFileError, quoted_list
from ._export import Export
from ._tables import iter_table, sniff_table_format

__all__ = ["SAMPLE_RESPONSES", "free_text_questions", "iter_survey", "read_survey"]

_META = re.compile(
    r"^(?:#|id|respondent ?id|response ?id|collector ?id|token|network ?id|submission ?id|ip(?: address)?|"
    r"e-?mail(?: address)?|first ?name|last ?name|full ?name|name|custom data.*|user ?agent|ref(?:errer)?|"
    r"utm_.*|hidden.*|tags?|language|country|city|browser|device|platform|status|progress|finished|"
    r"duration.*|distribution ?channel|latitude|longitude|timestamp|"
    r"(?:start|end|submit|submitted|submission|recorded|response|created|completion)? ?(?:date|time)(?: ?\(utc\))?|"
    r"(?:submitted|started|ended|landed) ?at(?: ?\(utc\))?|date ?submitted|"
    # contact questions (Typeform's contact block, a form's "What is your name?"): names, not feedback
    r"(?:what(?: i|')s )?your (?:full |first |last )?(?:name|e-?mail(?: address)?|phone(?: number)?)|"
    r"(?:company|business|organi[sz]ation)(?: ?name)?|(?:job ?)?title|role|phone(?: number)?)\s*\??\s*(?:\(optional\))?$",
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


def _unidentified_first(frame: pd.DataFrame, data: list[str]) -> bool:
    """Whether the first row is SurveyMonkey's label row in another language ("Antwort", "Offene Antwort"): labels
    but no respondent id and no date, where every response after it has both. It was read as a response,
    "Offene Antwort" kept as an answer."""
    id_col, time_col = _find(data, _ID_COLUMNS), _find(data, _TIME_COLUMNS)
    if id_col is None or time_col is None or len(frame) < 2:
        return False

    def given(v: Any) -> bool:
        return isinstance(v, str) and bool(v.strip())

    head = frame.iloc[:SUBHEADER_SAMPLE]
    return (not given(head[id_col].iloc[0]) and not given(head[time_col].iloc[0])
            and any(given(frame[c].iloc[0]) for c in data)
            and all(given(v) for v in head[id_col].iloc[1:]) and all(given(v) for v in head[time_col].iloc[1:]))


SUBHEADER_SAMPLE = 20  # responses after a label row that must all carry a respondent id


def _subheader_names(frame: pd.DataFrame) -> dict[str, str] | None:
    """SurveyMonkey puts answer labels in a second header row: the question names with it folded in, or None
    when the first row is an answer."""
    if frame.empty or "_error" in frame.columns and isinstance(frame["_error"].iloc[0], str):
        return None
    first = frame.iloc[0]
    data = [c for c in frame.columns if not c.startswith("_")]
    labels = [str(first[c]).strip().lower() if isinstance(first[c], str) else "" for c in data]
    if not any(lab in ("response", "open-ended response") for lab in labels) and not _unidentified_first(frame, data):
        return None
    names, last = {}, ""
    for c, lab, raw in zip(data, labels, (first[c] for c in data)):
        base = last if c.startswith("Unnamed: ") else c
        last = base
        names[c] = base if lab in ("", "response", "open-ended response") else f"{base} / {str(raw).strip()}"
    return names


_IMPORT_ID = re.compile(r'^\s*\{\s*"ImportId"\s*:')


def _qualtrics_header(frame: pd.DataFrame) -> tuple[dict[str, str], dict[str, tzinfo], int] | None:
    """Qualtrics writes three header rows: the column ids (``Q2_TEXT``), the question texts, and
    ``{"ImportId": "QID2_TEXT", "timezone": "America/Denver"}`` per column (exports before 2017: two, ``V1, V2, …``
    then ``ResponseID, ResponseSet, …`` and the question texts). The question text of each column (its id beside
    it when two columns ask the same), the time zone of each date column, and how many rows were header, or None
    when the second row is a response. Read as responses they were fake answers (the question text itself, the
    ImportId JSON), and every date was read as UTC, hours off."""
    if len(frame) < 2 or "_error" in frame.columns and frame["_error"].iloc[:2].map(lambda e: isinstance(e, str)).any():
        return None
    data = [c for c in frame.columns if not c.startswith("_")]
    texts, imports = frame.iloc[0], frame.iloc[1]
    marked = [c for c in data if isinstance(imports[c], str) and _IMPORT_ID.match(imports[c])]
    legacy = data[:1] == ["V1"] and texts["V1"] == "ResponseID"
    if not legacy and (not marked or len(marked) < len(data) / 2):
        return None
    labels = {c: texts[c].strip() if isinstance(texts[c], str) and texts[c].strip() else c for c in data}
    repeated = Counter(labels.values())
    names = {c: label if repeated[label] == 1 or label == c else f"{label} [{c}]" for c, label in labels.items()}
    zones: dict[str, tzinfo] = {}
    for c in marked:
        try:
            zone = json.loads(imports[c]).get("timezone")
            if isinstance(zone, str) and zone:
                zones[names[c]] = ZoneInfo(zone)
        except (ValueError, AttributeError, KeyError):  # no JSON object, or a zone the system does not know
            continue
    return names, zones, 1 if legacy else 2


def _in_zone(value: Any, zone: tzinfo) -> Any:
    """A local date-time written without an offset as ISO text with its zone's offset (others as they are)."""
    if not isinstance(value, str) or not value.strip():
        return value
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return value if moment.tzinfo is not None else moment.replace(tzinfo=zone).isoformat()


# Free-text questions are chosen on the first responses (as many as this), so that an export of any size is
# read a chunk at a time: a survey whose free-text answers begin only after them needs questions=[...].
SAMPLE_RESPONSES = 20_000
_COLUMNS = ("_row", "_error", "_raw", "id", "text", "source", "source_detail", "created_at", "account_id")


def read_survey(path: str | os.PathLike, *, questions: Sequence[str] | None = None,
                encoding: str | None = None) -> Export:
    """Read a wide survey CSV/TSV/Parquet/JSON into one raw row per non-empty free-text answer.

    Rows carry ``id`` (``<respondent id>-q<column number>``; the response's line when there is no
    respondent id), ``text``, ``source="survey"``, ``source_detail`` (the question), ``created_at``
    (the submit time when the export has one), ``account_id`` (a company/account column, if any) and
    ``_row`` (the response's line in the file). Empty answers are skipped and counted; a response row
    that does not parse (ragged, bad bytes) becomes one rejected row. :func:`iter_survey` gives the same
    rows a response at a time.
    """
    skipped: Counter[str] = Counter()
    return Export.from_rows(iter_survey(path, questions=questions, encoding=encoding, skipped=skipped), skipped)


def iter_survey(path: str | os.PathLike, *, questions: Sequence[str] | None = None, encoding: str | None = None,
                skipped: MutableMapping[str, int] | None = None,
                sample: int | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_survey`, a response at a time: the free-text questions are chosen on the
    first ``sample`` responses (default :data:`SAMPLE_RESPONSES`; unless ``questions`` names them), then the export is read a chunk at a time,
    so memory holds the sample and one chunk, never the export."""
    path = Path(path)
    sample = sample or SAMPLE_RESPONSES
    counts = skipped if skipped is not None else {}
    chunks = iter_table(path, sniff_table_format(path), encoding=encoding, chunk_size=min(sample, 10_000))
    head: list[pd.DataFrame] = []
    for chunk in chunks:
        head.append(chunk)
        if sum(map(len, head)) >= sample:
            break
    frame = pd.concat(head, ignore_index=True) if head else pd.DataFrame()
    names = _subheader_names(frame)
    zones: dict[str, tzinfo] = {}
    if names is not None:
        frame = frame.iloc[1:].rename(columns=names).reset_index(drop=True)
    elif (qualtrics := _qualtrics_header(frame)) is not None:
        names, zones, rows = qualtrics
        frame = frame.iloc[rows:].rename(columns=names).reset_index(drop=True)
        # questions named by their column ids (Q2_TEXT) as well as by their texts
        questions = None if questions is None else [names.get(q, q) if q not in names.values() else q for q in questions]
    if frame.empty:
        raise InputFileError(f"{path} holds no survey responses")
    columns = [c for c in frame.columns if not c.startswith("_")]
    if questions is None:
        questions = free_text_questions(frame)
        if not questions:
            raise InputFileError(f"{path}: no free-text question found among {quoted_list(columns)}; "
                                 "name them with read_survey(path, questions=[...])")
    else:
        missing = [q for q in questions if q not in frame.columns]
        if missing:
            raise ColumnError(f"questions {quoted_list(missing)} not found in {path}; columns: {quoted_list(columns)}")
    id_col, time_col = _find(columns, _ID_COLUMNS), _find(columns, _TIME_COLUMNS)
    account_col = _find(columns, _ACCOUNT_COLUMNS)
    position = {c: i + 1 for i, c in enumerate(columns)}
    keep = [c for c in _COLUMNS if (c != "created_at" or time_col) and (c != "account_id" or account_col)]
    rest = (c.rename(columns=names) if names is not None else c for c in chunks)
    zone = zones.get(time_col) if time_col else None
    for part in itertools.chain([frame], rest):  # the sample first, then the rest of the export as it is read
        for record in part.to_dict("records"):
            if zone is not None:
                record[time_col] = _in_zone(record.get(time_col), zone)
            for row in _answer_rows(record, questions, id_col, time_col, account_col, position, counts):
                yield {c: row.get(c) for c in keep}


def _number_id(value: Any) -> str | None:
    """A respondent id stored as a number (Parquet, a DataFrame) as its digits; it was replaced by the row number.
    A float id is taken only while it is exact (a missing value makes pandas store integer ids as floats)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return None


def _answer_rows(record: Mapping[Any, Any], questions: Sequence[str], id_col: str | None, time_col: str | None,
                 account_col: str | None, position: dict[str, int],
                 skipped: MutableMapping[str, int]) -> Iterator[dict[str, Any]]:
    """The rows of one response: one per non-empty free-text answer, or one rejected row if it did not parse."""
    line = int(record["_row"])
    ident = record.get(id_col) if id_col else None
    respondent = ident.strip() if isinstance(ident, str) and ident.strip() else _number_id(ident) or str(line)
    base = {"source": "survey", "created_at": record.get(time_col) if time_col else None,
            "account_id": record.get(account_col) if account_col else None}
    error = record.get("_error")
    if isinstance(error, str):
        yield {"_row": line, "_error": error, "_raw": record.get("_raw"), "id": respondent, **base}
        return
    for q in questions:
        answer = record.get(q)
        if not isinstance(answer, str) or not answer.strip():
            skipped["empty answer"] = skipped.get("empty answer", 0) + 1
            continue
        yield {"_row": line, "_error": None, "_raw": None, "id": f"{respondent}-q{position[q]}", "text": answer,
               "source_detail": q, **base}
