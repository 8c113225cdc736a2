"""Round 15a: row fidelity of batch outputs. Every command that reads a table and writes one keeps every
row, in order, with the values it was given: nothing lost, duplicated or silently altered."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from feedback_nlp.cli import main


def _csv(path, text: str) -> str:
    path.write_bytes(text.encode())
    return str(path)


# --- score: an input column the framework writes is never replaced silently -----------------------------------

@pytest.mark.parametrize(("framework", "column"), [("rice", "rice"), ("ice", "ice"), ("moscow", "moscow"),
                                                   ("moscow", "moscow_rule")])
def test_score_refuses_an_input_column_it_would_overwrite(tmp_path, capsys, framework, column):
    src = _csv(tmp_path / "in.csv", "id,reach,impact,confidence,effort,ease,score,"
               f"{column}\r\na,1,1,1,1,1,5,keep\r\nb,2,1,1,1,1,1,me\r\n")
    out = tmp_path / "out.csv"
    code = main(["score", "--in", src, "--out", str(out), "--framework", framework])
    # was: exit 0 and the input's column replaced by the score ("keep", "me" gone from the output)
    assert code == 1 and not out.exists()
    assert f"already has a column '{column}', which --framework {framework} writes" in capsys.readouterr().err


def test_score_keeps_every_other_cell_as_written(tmp_path):
    src = _csv(tmp_path / "in.csv", "id,reach,impact,confidence,effort,flag,date,price,big,score\r\n"
               "007,1234,1,0.5,2,TRUE,01/02/2024,1.200,12345678901234567890,old\r\n"
               "NA,3,0.5,0.5,1,NA,,nan,1e5,\r\n")
    out = tmp_path / "out.csv"
    assert main(["score", "--in", src, "--out", str(out), "--framework", "rice", "-q"]) == 0
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got.drop(columns="rice").values.tolist() == [
        ["007", "1234", "1", "0.5", "2", "TRUE", "01/02/2024", "1.200", "12345678901234567890", "old"],
        ["NA", "3", "0.5", "0.5", "1", "NA", "", "nan", "1e5", ""]]


# --- ids: a float id past 2**53 lost its last digits ------------------------------------------------------------

def test_float_ids_past_two_to_the_53_are_rejected_not_merged(tmp_path, monkeypatch):
    from _hostile_support import hashed_tag_model
    from feedback_nlp import read_feedback, tag_file

    # an integer id column with one missing value: pandas stores it as float64 (Twitter/Discord snowflake ids)
    df = pd.DataFrame({"id": [1790000000000000001, 1790000000000000002, None, 9007199254740991],
                       "text": ["export fails", "add dark mode", "csv export broken", "please add sso"]})
    assert df["id"].dtype == "float64"
    fb = read_feedback(df)
    # was: both read "1.79e+18", the first tagged under an id it never had, the second a "duplicate id"
    assert fb.records["id"].tolist() == ["9007199254740991"]
    reasons = dict(zip(fb.rejected["row"], fb.rejected["reason"]))
    assert reasons[3] == "missing id" and all("2**53" in reasons[r] and "digits are lost" in reasons[r] for r in (1, 2))
    src, out = tmp_path / "in.parquet", tmp_path / "out.csv"
    df.to_parquet(src)
    summary = tag_file(hashed_tag_model(tmp_path / "m", monkeypatch), src, out, cache=False, progress=False)
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (4, 1, 3)
    assert pd.read_csv(out, dtype=str)["id"].tolist() == ["9007199254740991"]


# --- Parquet integer columns with a null stay integers --------------------------------------------------------

def test_parquet_integer_ids_with_a_null_keep_every_digit(tmp_path, monkeypatch):
    from _hostile_support import hashed_tag_model
    from feedback_nlp import read_feedback, tag_file

    big = [1790000000000000001, None, 1790000000000000002, 7]
    src = tmp_path / "in.parquet"
    pd.DataFrame({"id": pd.array(big, dtype="Int64"),  # the file holds exact int64 values and one null
                  "text": ["export fails", "add dark mode", "csv export broken", "please add sso"]}).to_parquet(src)
    want = ["1790000000000000001", "1790000000000000002", "7"]
    # was: Arrow's pandas conversion made the column float64: both big ids read 1.79e+18 (one a false duplicate)
    assert read_feedback(src).records["id"].tolist() == want
    out = tmp_path / "out.jsonl"
    summary = tag_file(hashed_tag_model(tmp_path / "m", monkeypatch), src, out, chunk_size=2, cache=False, progress=False)
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (4, 3, 1)
    assert pd.read_json(out, lines=True, dtype=str)["id"].tolist() == want


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "parquet"])
def test_score_passes_a_parquet_integer_column_with_a_null_through_as_integers(tmp_path, ext):
    src, out = tmp_path / "in.parquet", tmp_path / f"out.{ext}"
    pd.DataFrame({"id": ["a", "b", "c"], "reach": [1, 2, 3], "impact": [1, 1, 1], "confidence": [1, 1, 1],
                  "effort": [1, 1, 1], "votes": pd.array([7, None, 2**60 + 1], dtype="Int64")}).to_parquet(src)
    assert main(["score", "--in", str(src), "--out", str(out), "--framework", "moscow", "--score-col", "reach",
                 "-q"]) == 0
    if ext == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert str(table.schema.field("votes").type) == "int64"
        votes = table.column("votes").to_pylist()
    elif ext == "jsonl":
        votes = [json.loads(line)["votes"] for line in out.read_text().splitlines()]
    else:
        votes = pd.read_csv(out, sep="," if ext == "csv" else "\t", dtype=str)["votes"].tolist()
        votes = [None if isinstance(v, float) else int(v) for v in votes]
    # was: "7.0" and 1152921504606846976 (float) in CSV, 7.0 in JSON lines, a double column in Parquet
    assert votes == [7, None, 2**60 + 1]


# --- JSON: a number nested in an object or a list stays a number ---------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_score_passes_nested_json_values_through_unchanged(tmp_path, fmt):
    records = [{"id": 1, "reach": 1, "impact": 1, "confidence": 1, "effort": 1,
                "meta": {"votes": 3, "ratio": 0.25, "ok": True, "none": None, "deep": [{"n": 12345678901234567890}]},
                "lst": [1, "a", False]}]
    src, out = tmp_path / f"in.{fmt}", tmp_path / "out.jsonl"
    src.write_text("\n".join(map(json.dumps, records)) if fmt == "jsonl" else json.dumps(records))
    assert main(["score", "--in", str(src), "--out", str(out), "--framework", "rice", "-q"]) == 0
    got = json.loads(out.read_text())
    # was: {"votes": "3", "ratio": "0.25", ..., "deep": [{"n": "12345678901234567890"}]} and ["1", "a", false]
    assert got["meta"] == records[0]["meta"] and got["lst"] == records[0]["lst"]
    assert got["id"] == "1"  # a top-level value is read as the text it spells, as documented


# --- CSV: a quoted cell keeps its line ends byte for byte -------------------------------------------------------

@pytest.mark.parametrize("text", ["\r0\r\n", "a\rb\r\nc", "first\rsecond\r\nthird\nfourth"])
def test_csv_cell_with_a_bare_cr_and_a_crlf_is_read_as_written(tmp_path, text):
    import csv

    from feedback_nlp import read_feedback

    path = tmp_path / "in.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["id", "text", "note"], ["1", f"export fails {text}", text], ["2", "add sso", "x"]])
    fb = read_feedback(path)
    # was: the CRLF after a bare CR became an LF ("a\rb\nc"), in raw_text and in every pass-through column
    assert fb.records["raw_text"].tolist() == [f"export fails {text}", "add sso"]
    out = tmp_path / "out.csv"
    assert main(["score", "--in", str(path), "--out", str(out), "--framework", "moscow", "--score-col", "id", "-q",
                 "--raw-csv"]) == 0  # a cell starting with CR is otherwise prefixed with ' (documented)
    with open(out, encoding="utf-8", newline="") as fh:
        assert [row[2] for row in csv.reader(fh)][1:] == [text, "x"]
