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
