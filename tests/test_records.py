import pandas as pd
import pytest

from feedback_nlp import ColumnError, InvalidInputError, read_feedback
from feedback_nlp.records import iter_table_chunks, read_table, write_table


def _df(**cols):
    base = {"id": ["a", "b", "c"], "text": ["Export fails", "Dark mode please", "SSO with Okta?"]}
    base.update(cols)
    return pd.DataFrame(base)


def test_canonical_columns_and_mapping():
    df = pd.DataFrame({"ticket": ["1", "2"], "body": ["<p>Export fails</p>", "Mail me: a@b.io"],
                       "channel": ["Zendesk", "app review"], "acct": ["A1", "A2"], "arr": ["$1,200", "300"],
                       "when": ["2026-01-01", "2026-01-02T10:00:00Z"], "extra": [1, 2]})
    fb = read_feedback(df, text_col="body", id_col="ticket", source_col="channel", account_col="acct",
                       revenue_col="arr", time_col="when")
    r = fb.records
    assert list(r.columns[:3]) == ["id", "text", "source"]
    assert r["text"].tolist() == ["Export fails", "Mail me: <EMAIL>"]
    assert r["source"].tolist() == ["support", "app_review"]
    assert r["account_revenue"].tolist() == [1200.0, 300.0]
    assert str(r["created_at"].dt.tz) == "UTC"
    assert "extra" in r.columns and r["raw_text"][1] == "Mail me: a@b.io"


def test_rejected_rows_are_reported_not_dropped():
    fb = read_feedback(_df(text=["Export fails", "", None]))
    assert fb.records["id"].tolist() == ["a"]
    assert fb.rejected["id"].tolist() == ["b", "c"]
    assert fb.rejected["reason"].tolist() == ["empty text after cleaning", "missing text"]
    assert len(fb) == 3
    records, rejected = fb  # unpacks
    assert len(records) + len(rejected) == 3


def test_missing_text_column():
    with pytest.raises(ColumnError, match=r"text column 'body' not found; available columns: \['id', 'text'\]"):
        read_feedback(_df(), text_col="body")


@pytest.mark.parametrize("arg", ["id_col", "source_col", "account_col", "revenue_col", "time_col"])
def test_missing_named_columns(arg):
    with pytest.raises(ColumnError, match="'nope' not found"):
        read_feedback(_df(), **{arg: "nope"})


def test_bad_dates_and_revenue_reject_the_row_not_the_file():
    fb = read_feedback(_df(created_at=["2026-01-01", "yesterday-ish", ""], account_revenue=["10", "5", "-5"]))
    assert fb.records["id"].tolist() == ["a"]
    assert fb.rejected[["row", "id"]].values.tolist() == [[2, "b"], [3, "c"]]
    assert fb.rejected["reason"].tolist() == [
        "unparseable date 'yesterday-ish' in column 'created_at'",
        "revenue '-5' in column 'account_revenue' is not a non-negative number"]


def test_duplicate_and_missing_ids_are_rejected_first_kept():
    fb = read_feedback(_df(id=["a", "a", ""]))
    assert fb.records["id"].tolist() == ["a"] and fb.records["text"].tolist() == ["Export fails"]
    assert fb.rejected["reason"].tolist() == ["duplicate id", "missing id"]
    assert fb.rejected["row"].tolist() == [2, 3]


def test_a_rejected_row_does_not_claim_its_id():
    fb = read_feedback(_df(id=["a", "a", "b"], text=["", "Export fails", "SSO"]))
    assert fb.records["id"].tolist() == ["a", "b"]
    assert fb.rejected["reason"].tolist() == ["empty text after cleaning"]


def test_unknown_source():
    fb = read_feedback(_df(source=["slack", "carrier pigeon", ""]))
    assert fb.records["source"].tolist() == ["slack", "other", "other"]
    assert fb.records["source_detail"].fillna("").tolist() == ["", "carrier pigeon", ""]
    strict = read_feedback(_df(source=["slack", "carrier pigeon", "survey"]), unknown_source="error")
    assert strict.rejected["reason"].str.startswith("unknown source 'carrier pigeon'").tolist() == [True]
    with pytest.raises(InvalidInputError, match="unknown_source"):
        read_feedback(_df(), unknown_source="drop")


def test_default_source_and_generated_ids():
    fb = read_feedback(pd.DataFrame({"text": ["a thing", "another"]}), default_source="survey")
    assert fb.records["id"].tolist() == ["1", "2"] and set(fb.records["source"]) == {"survey"}
    with pytest.raises(InvalidInputError, match="default_source"):
        read_feedback(pd.DataFrame({"text": ["x"]}), default_source="fax")


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_file_formats_round_trip(tmp_path, ext):
    df = _df(tags=[["a", "b"], ["c"], []])
    path = write_table(df, tmp_path / f"x.{ext}")
    back = read_table(path)
    assert back["id"].astype(str).tolist() == ["a", "b", "c"]
    fb = read_feedback(path)
    assert fb.records["text"].tolist() == df["text"].tolist()
    chunks = list(iter_table_chunks(path, chunk_size=2))
    assert [len(c) for c in chunks] == [2, 1]
    # _row is the line in a CSV/JSONL file (the header is line 1), the record number in Parquet
    assert chunks[1]["_row"].tolist() == ([3] if ext == "parquet" else [4] if ext == "csv" else [3])


def test_unknown_format(tmp_path):
    import zipfile

    p = tmp_path / "x.xlsx"  # a spreadsheet is a zip file: refused with a hint, never parsed as CSV
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(InvalidInputError, match="zip file but not a Slack export.*save spreadsheets as CSV"):
        read_feedback(p)
    q = tmp_path / "notes.txt"  # an unknown extension with text inside is read as CSV
    q.write_text("text\nExport fails\n")
    assert read_feedback(q).records["text"].tolist() == ["Export fails"]


def test_sample_reads_clean(sample):
    assert len(sample) == 3000
    assert set(sample["source"]) == {"support", "slack", "sales_call", "survey", "app_review"}
    # PII planted in the sample never survives cleaning
    assert not sample["text"].str.contains(r"@\w+\.com|7946", regex=True).any()
    assert sample["text"].str.contains("<EMAIL>").any()


# --- formats, sniffing and hostile layouts ---------------------------------------------------------

def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


def test_json_and_json_lines_are_told_apart_by_content(tmp_path):
    lines = _write(tmp_path, "a.json", '{"id": 1, "text": "Export fails"}\n{"id": 2, "text": "Dark mode"}\n')
    array = _write(tmp_path, "b.jsonl", '[{"id": "1.50", "text": "Export fails"}]')
    assert read_feedback(lines).records["id"].tolist() == ["1", "2"]
    assert read_feedback(array).records["id"].tolist() == ["1.50"]  # a string id stays exactly as written
    wrapped = _write(tmp_path, "c.json", '{"exported": "2026-01-05", "items": [{"id": 12345678901234567890, "text": "x y"}]}')
    assert read_feedback(wrapped).records["id"].tolist() == ["12345678901234567890"]  # no float rounding


def test_csv_dialects(tmp_path):
    semi = _write(tmp_path, "semi.csv", "id;text\r1;Export fails, badly\r2;Dark mode\r")  # Excel (EU), old Mac
    assert read_feedback(semi).records["text"].tolist() == ["Export fails, badly", "Dark mode"]
    tsv = _write(tmp_path, "t.tsv", "id\ttext\n1\tExport, fails\n")
    assert read_feedback(tsv).records["text"].tolist() == ["Export, fails"]
    import gzip

    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(b"id,text\n1,Export fails\n"))
    assert read_feedback(gz).records["id"].tolist() == ["1"]
    dup = _write(tmp_path, "d.csv", " id , text ,text\n1,Export fails,other\n")  # spaces and a repeated name
    r = read_feedback(dup).records
    assert r["text"].tolist() == ["Export fails"] and r["text.1"].tolist() == ["other"]
    header_only = _write(tmp_path, "h.csv", "id,text\n")
    fb = read_feedback(header_only)
    assert len(fb.records) == 0 and len(fb.rejected) == 0
    with pytest.raises(ColumnError, match="text column 'body' not found"):
        read_feedback(header_only, text_col="body")


def test_typed_values_from_parquet_and_dataframes(tmp_path):
    df = pd.DataFrame({"id": [b"a1", 7, 8.0, True], "text": [b"bytes that are text", 42, "ok text", "fine"],
                       "created_at": [pd.Timestamp("2026-01-05 10:00", tz="Europe/Paris"), 1767607200123, "20260105", None]})
    r = read_feedback(df).records
    assert r["id"].tolist() == ["a1", "7", "8", "true"]
    assert r["text"].tolist() == ["bytes that are text", "42", "ok text", "fine"]
    assert [str(t) for t in r["created_at"]] == ["2026-01-05 09:00:00+00:00", "2026-01-05 10:00:00.123000+00:00",
                                                 "2026-01-05 00:00:00+00:00", "NaT"]


def test_words_are_not_times():
    fb = read_feedback(_df(created_at=["now", "today", "2026-01-05"]))
    assert fb.rejected["reason"].tolist() == ["unparseable date 'now' in column 'created_at'",
                                              "unparseable date 'today' in column 'created_at'"]


def test_placeholders_are_configurable():
    df = _df(text=["N/A", "TBD", "Export fails"])
    assert read_feedback(df).rejected["reason"].tolist() == ["placeholder text 'N/A'"]
    fb = read_feedback(df, placeholders=["tbd"])
    assert fb.records["text"].tolist() == ["N/A", "Export fails"] and fb.rejected["id"].tolist() == ["b"]
    # a placeholder elsewhere is just an empty value, not an error
    assert read_feedback(_df(account_revenue=["#N/A", "n/a", "5"])).records["account_revenue"].isna().sum() == 2


def test_rejected_rows_are_redacted():
    secrets = ["jane.doe@acme.io", "+44 20 7946 0958", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE"]
    df = _df(text=[f"{s} " + "word " * 5000 for s in secrets[:3]], created_at=["soon", "later", secrets[3]])
    rej = read_feedback(df).rejected
    assert len(rej) == 3
    blob = " ".join(rej["text"].fillna("")) + " ".join(rej["reason"])
    assert not any(s in blob for s in secrets)
    assert rej["text"].str.len().max() <= 510  # cut short for the errors file


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text("abc0123", min_size=1, max_size=4), _cell), min_size=1, max_size=12))
def test_every_csv_row_is_accounted_for_exactly_once(tmp_path_factory, rows):
    import csv

    path = tmp_path_factory.mktemp("h") / "x.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        w.writerows(rows)
    fb = read_feedback(path)
    assert len(fb.records) + len(fb.rejected) == len(rows)
    lines = sorted([*fb.records["row"], *fb.rejected["row"]])
    assert len(set(lines)) == len(rows)  # one line number per input row
    source = dict(zip(lines, rows))  # the n-th line number belongs to the n-th row written
    for i, line, raw in zip(fb.records["id"], fb.records["row"], fb.records["raw_text"]):
        assert (i, raw) == source[line]  # ids and texts come back exactly as written
    assert fb.records["id"].is_unique
    for reason, line in zip(fb.rejected["reason"], fb.rejected["row"]):
        if reason == "duplicate id":
            assert source[line][0] in set(fb.records["id"])


def test_a_giant_csv_field_is_one_rejected_row(tmp_path):
    p = _write(tmp_path, "huge.csv", "id,text\n1,ok text\n2," + "word " * 40000 + "\n3,fine too\n")
    fb = read_feedback(p)
    assert fb.records["id"].tolist() == ["1", "3"]
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [[3, "2", "text too long (a field over 131072 characters)"]]
