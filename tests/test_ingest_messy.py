"""One deliberately messy file per format, through the API and through every command (tag, dedupe, themes,
report): the same accepted rows and the same rejects (row = line/record number, id, reason) everywhere,
rows in = accepted + rejected, and never a traceback. Whole-file failures give one `error:` line.

The files are in tests/fixtures/ingest/messy/ (see each case below for what is wrong in them).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from feedback_nlp import EncodingError, InputFileError, InputNotFoundError, read_feedback
from feedback_nlp.cli import main

MESSY = Path(__file__).parent / "fixtures" / "ingest" / "messy"
GOOD = [f"g{i}" for i in range(1, 13)]

# (file, --encoding, accepted ids in source order, rejects as (row, id, reason))
CASES = {
    "csv": ("messy.csv", "utf-8", ["1", "3", "10", "13", "14", *GOOD], [
        (3, "2", "placeholder text 'N/A'"),
        (5, "4", "malformed CSV (',' expected after '\"')"),  # the unclosed quote: only its line is lost
        (6, "5", "ragged row: 8 fields, the header has 6"),
        (7, "6", "ragged row: 2 fields, the header has 6"),
        (8, "1", "duplicate id"),
        (9, "7", "bytes not valid in utf-8 (first: 0xE9); check --encoding"),
        (10, "8", "revenue 'lots' in column 'account_revenue' is not a non-negative number"),
        (11, "9", "unparseable date 'not a date' in column 'created_at'"),
        (14, None, "missing id"),
        (15, "11", "placeholder text 'null'"),
        (16, "12", "empty text after cleaning"),
    ]),
    "jsonl": ("messy.jsonl", None, ["1", "4.0", "007", *GOOD], [
        (2, "1", "duplicate id"),  # 1 and "1" are the same id as written
        (3, "2", "placeholder text 'N/A'"),
        (4, "3", "malformed JSON line (Expecting property name enclosed in double quotes)"),  # id read from the text
        (5, None, "JSON line is list, not an object"),
        (7, None, "missing id"),
        (9, "5", "text is dict, not str"),
        (10, "6", "unparseable date '2026-02-30' in column 'created_at'"),
        (11, "7", "revenue '-3' in column 'account_revenue' is not a non-negative number"),
        (25, "8", "malformed JSON line (Unterminated string starting at)"),
    ]),
    "json": ("messy.json", None, ["1", *GOOD], [
        (2, None, "JSON record is str, not an object"),
        (3, "1", "duplicate id"),
        (4, "2", "placeholder text '#N/A'"),
        (5, "3", "missing text"),
        (6, "4", "text is list, not str"),
        (7, "5", "unparseable date '31/31/2026' in column 'created_at'"),
        (8, "6", "unparseable date 'yesterday' in column 'created_at'"),
    ]),
    "parquet": ("messy.parquet", None, ["1", *[str(100 + k) for k in range(12)]], [
        (2, "2", "placeholder text 'NaN'"),
        (3, None, "missing id"),
        (4, "1", "duplicate id"),  # float ids from a null-holding int column read back as "1", not "1.0"
        (5, "3", "missing text"),
        (6, "4", "binary or non-text content"),
        (7, "5", "revenue '-1' in column 'account_revenue' is not a non-negative number"),
        (8, "6", "unparseable date '2026-99-01' in column 'created_at'"),
    ]),
}
SECRETS = ("7946 0958", "jane@example.com", "4111.1111", "AKIAIOSFODNN7EXAMPLE", "123-45-6789")


def _triples(df: pd.DataFrame) -> list[tuple]:
    ids = [None if pd.isna(i) or i == "" else str(i) for i in df["id"]]
    return sorted(zip(df["row"].astype(int), ids, df["reason"].astype(str)), key=lambda t: t[0])


def _read_out(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":  # ids such as "007" must come back as written
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path)


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("fmt", list(CASES))
def test_api_accepts_and_rejects_exactly(fmt):
    name, encoding, accepted, rejects = CASES[fmt]
    fb = read_feedback(MESSY / name, encoding=encoding)
    assert fb.records["id"].tolist() == accepted
    assert _triples(fb.rejected) == rejects
    assert list(fb.rejected.columns) == ["row", "id", "reason", "text"]
    rows_in = len(accepted) + len(rejects)
    assert len(fb) == rows_in
    # rejected rows keep their text for review, but never the PII the cleaner redacts
    assert not fb.rejected["text"].dropna().str.contains("|".join(SECRETS), regex=True).any()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(CASES))
def test_every_command_sees_the_same_rows(fmt, tmp_path, cache_path):
    name, encoding, accepted, rejects = CASES[fmt]
    src = tmp_path / name
    shutil.copy(MESSY / name, src)
    common = ["--cache", str(cache_path)] + (["--encoding", encoding] if encoding else [])
    n = len(accepted) + len(rejects)
    runs = {
        "tag": ["tag", "--model", "request-type", "--in", str(src), "--out", str(tmp_path / "tagged.csv")],
        "dedupe": ["dedupe", "--in", str(src), "--out", str(tmp_path / "groups.csv"), "--threshold", "0.8"],
        "themes": ["themes", "--in", str(src), "--out", str(tmp_path / "themes"), "--min-theme-size", "3"],
        "report": ["report", "--in", str(src), "--out", str(tmp_path / "report"), "--min-theme-size", "3"],
    }
    for command, args in runs.items():
        rc, out, err = _run(args + common)
        assert rc == 0, f"{command}: {err}"
        assert "Traceback" not in out + err
        if command == "tag":
            assert f"rows in: {n} = tagged: {len(accepted)} + errors: {len(rejects)}" in out
            got, errors = _read_out(tmp_path / "tagged.csv"), _read_out(tmp_path / "tagged.errors.csv")
        elif command == "dedupe":
            assert f"rows in: {n} = used: {len(accepted)} + errors: {len(rejects)}" in out
            got, errors = None, _read_out(tmp_path / "groups.errors.csv")
        elif command == "themes":
            got, errors = _read_out(tmp_path / "themes" / "assignments.csv"), _read_out(tmp_path / "themes" / "errors.csv")
        else:
            got, errors = _read_out(tmp_path / "report" / "items.csv"), _read_out(tmp_path / "report" / "rejected.csv")
        if got is not None:
            assert sorted(got["id"]) == sorted(accepted), command
        assert _triples(errors) == rejects, command
        assert not errors["text"].str.contains("|".join(SECRETS), regex=True).any(), command


# --- whole-file failures: one clear error naming the file ---------------------------------------------

def _broken_files(tmp_path: Path) -> dict[str, tuple[Path, type, str]]:
    truncated = tmp_path / "cut.parquet"
    data = (MESSY / "messy.parquet").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\n1,Export fails\n2,Caf\xe9 cr\xe8me menu\n".encode("latin-1"))
    utf16 = tmp_path / "nobom16.csv"
    utf16.write_bytes("id,text\n1,Export fails\n".encode("utf-16-le"))
    folder = tmp_path / "a_folder"
    folder.mkdir()
    return {
        "missing": (tmp_path / "nope.csv", InputNotFoundError, "not found"),
        "folder": (folder, InputFileError, "is a folder"),
        "truncated parquet": (truncated, InputFileError, "not a readable Parquet file"),
        "empty": (empty, InputFileError, "is empty"),
        "latin-1 undeclared": (latin, EncodingError, r"byte 0xE9 at line 3 .*--encoding"),
        "UTF-16 without BOM": (utf16, EncodingError, "UTF-16 without a byte-order mark"),
    }


def test_whole_file_failures_raise_one_clear_error(tmp_path):
    for case, (path, error, message) in _broken_files(tmp_path).items():
        with pytest.raises(error, match=message):
            read_feedback(path)
        assert str(path) in _message(path), case


def _message(path: Path) -> str:
    try:
        read_feedback(path)
    except InputFileError as exc:
        return str(exc)
    raise AssertionError(f"{path} was read")


@pytest.mark.parametrize("command", ["tag", "dedupe", "themes", "report"])
def test_whole_file_failures_in_every_command(command, tmp_path, cache_path):
    for case, (path, _, message) in _broken_files(tmp_path).items():
        out = tmp_path / "out" / case.replace(" ", "_") / ("o.csv" if command in ("tag", "dedupe") else "dir")
        args = [command, "--in", str(path), "--out", str(out), "--cache", str(cache_path)]
        if command == "tag":
            args += ["--model", "request-type"]
        rc, stdout, err = _run(args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc != 0, case
        assert "Traceback" not in stdout + err, case
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(path.name) in lines[0], (case, err)
        assert re.search(message, lines[0]), (case, lines[0])


def test_declared_encodings(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\n1,Caf\xe9 cr\xe8me menu is broken\n".encode("cp1252"))
    assert read_feedback(latin, encoding="cp1252").records["text"].tolist() == ["Café crème menu is broken"]
    for bom_encoding in ("utf-8-sig", "utf-16"):  # a BOM is honoured without being declared
        p = tmp_path / f"{bom_encoding}.csv"
        p.write_bytes("id,text\n1,Naïve café search\n".encode(bom_encoding))
        fb = read_feedback(p)
        assert fb.records["text"].tolist() == ["Naïve café search"] and list(fb.records.columns[:2]) == ["id", "text"]
    p = tmp_path / "le.csv"
    p.write_bytes("id,text\n1,Naïve café search\n".encode("utf-16-le"))
    assert read_feedback(p, encoding="utf-16-le").records["id"].tolist() == ["1"]
    with pytest.raises(Exception, match="unknown encoding 'klingon'"):
        read_feedback(p, encoding="klingon")


def test_same_rows_in_any_chunking(tmp_path):
    # duplicate ids are caught across chunk boundaries: the streaming path sees the file in pieces
    from feedback_nlp.records import iter_feedback

    for fmt, (name, encoding, accepted, rejects) in CASES.items():
        for chunk_size in (1, 3, 1000):
            parts = list(iter_feedback(MESSY / name, encoding=encoding, chunk_size=chunk_size))
            ids = [i for p in parts for i in p.records["id"]]
            assert ids == accepted, (fmt, chunk_size)
            assert _triples(pd.concat([p.rejected for p in parts])) == rejects, (fmt, chunk_size)


def test_score_reads_with_the_same_options(tmp_path):
    src = tmp_path / "opps.csv"
    src.write_bytes("theme;reach;impact;confidence;effort\nCafé search;100;2;0.8;3\n".encode("cp1252"))
    rc, _, err = _run(["score", "--in", str(src), "--out", str(tmp_path / "o.csv"), "--framework", "rice"])
    assert rc != 0 and err.startswith("error: ") and "--encoding" in err and "Traceback" not in err
    rc, _, err = _run(["score", "--in", str(src), "--encoding", "cp1252", "--out", str(tmp_path / "o.csv"),
                       "--framework", "rice", "--quiet"])
    assert rc == 0, err
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["theme"].tolist() == ["Café search"] and out["rice"].round(2).tolist() == [53.33]


def test_eval_reads_labelled_data_with_the_same_options(tmp_path, cache_path):
    data = tmp_path / "labelled.csv"
    data.write_bytes("text;label\nLe menu « Café » plante à l'export;bug\nPlease add a dark mode;feature_request\n"
                     .encode("cp1252"))
    args = ["eval", "--model", "request-type", "--data", str(data), "--label-col", "label"]
    rc, _, err = _run(args)
    assert rc != 0 and "--encoding" in err and "Traceback" not in err
    rc, out, err = _run(args + ["--encoding", "cp1252", "--json"])
    assert rc == 0, err
    assert '"rows_in": 2' in out
