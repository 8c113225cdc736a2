"""Hostile and merely unusual inputs found by the sixth audit round: each test failed before its fix."""


import json

import pandas as pd
import pytest

import feedback_nlp as fb
from conftest import HashEmbedder
from feedback_nlp import ColumnError, EncodingError, InputFileError
from feedback_nlp.cli import main


@pytest.fixture
def hashed_cli(monkeypatch):
    import feedback_nlp.cli as cli

    monkeypatch.setattr(cli, "_embedder", lambda args: HashEmbedder())


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return str(path)


# --- a file mixing UTF-8 and latin-1 lines, declared in a code page -----------------------------------

_LATIN = "Café crème is cold".encode("latin-1")
_UTF8 = "Café au lait is late".encode()


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_utf8_lines_in_a_file_declared_cp1252_are_rejected_by_line_not_garbled(tmp_path, encoding):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"id,text\n1," + _LATIN + b"\n2," + _UTF8 + b"\n3,plain ascii\n")
    data = fb.read_feedback(path, encoding=encoding)
    # line 3 became "CafÃ© au lait is late" without a word
    assert data.records[["id", "text"]].values.tolist() == [["1", "Café crème is cold"], ["3", "plain ascii"]]
    (row, ident, reason, text), = data.rejected.values.tolist()
    assert (row, ident, text) == (3, "2", "2,Café au lait is late")  # shown as it was written
    assert "UTF-8 text ('é' would read as 'Ã©')" in reason and "mixes encodings" in reason


def test_utf8_lines_in_a_jsonl_file_declared_latin1_are_rejected_by_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"id": "1", "text": "' + _LATIN + b'"}\n{"id": "2", "text": "' + _UTF8 + b'"}\n')
    data = fb.read_feedback(path, encoding="latin-1")
    assert data.records["text"].tolist() == ["Café crème is cold"]
    assert data.rejected[["row", "id"]].values.tolist() == [[2, "2"]]
    assert "UTF-8 text" in data.rejected["reason"].iloc[0]


def test_a_utf8_header_in_a_file_declared_cp1252_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes("id,catégorie,text\n".encode() + b"1,a," + _LATIN + b"\n")
    with pytest.raises(EncodingError, match="header line 1 holds UTF-8 text"):
        fb.read_feedback(path, encoding="cp1252")  # the column name was "catÃ©gorie"


def test_a_code_page_file_whose_bytes_are_not_utf8_reads_unchanged(tmp_path):
    path = tmp_path / "latin.csv"  # "Ã©" written in cp1252 is two bytes that are not a UTF-8 pair here
    path.write_bytes("id,text\n1,Zoë naïve façade – “quoted”\n".encode("cp1252"))
    data = fb.read_feedback(path, encoding="cp1252")
    assert data.records["text"].tolist() == ["Zoë naïve façade – “quoted”"] and len(data.rejected) == 0


@pytest.mark.parametrize("text", ["Café crème menu", "Très bien, à bientôt", "Ña ñu español año"])
def test_the_encoding_hint_for_short_latin1_text_is_cp1252_not_cp1250(tmp_path, text):
    path = tmp_path / "latin.csv"
    path.write_bytes(f"id,text\n1,{text}\n".encode("latin-1"))
    with pytest.raises(EncodingError, match="it looks like cp1252"):  # said cp1250 (Central European)
        fb.read_feedback(path)


def test_the_encoding_hint_still_names_cp1250_for_czech_text(tmp_path):
    pytest.importorskip("charset_normalizer")
    path = tmp_path / "cz.csv"
    path.write_bytes("id,text\n1,Příliš žluťoučký kůň úpěl ďábelské ódy\n".encode("cp1250"))
    with pytest.raises(EncodingError, match="it looks like cp1250"):
        fb.read_feedback(path)


# --- long user values quoted in errors are cut ------------------------------------------------------

_LONG = "x" * 5000


@pytest.mark.parametrize("call", [
    lambda: fb.read_feedback(pd.DataFrame({_LONG: ["a"]})),
    lambda: fb.read_feedback(pd.DataFrame({"text": ["a"]}), text_col=_LONG),
    lambda: fb.Taxonomy([{"id": "a", "name": "A"}]).validate_labels([[_LONG]]),
    lambda: fb.Taxonomy([{"id": "a", "name": "A"}])[_LONG],
    lambda: fb.Taxonomy([{"id": "a", "name": "A", "parent": _LONG}]),
    lambda: fb.theme_scores(pd.DataFrame({"theme": [1], "revenue": [_LONG]}), revenue_col="revenue",
                            account_col=None, time_col=None),
], ids=["column", "text-col", "label", "tag", "parent", "revenue"])
def test_errors_quote_at_most_80_characters_of_a_value(call):
    with pytest.raises(fb.FeedbackNLPError) as info:
        call()
    message = str(info.value)
    assert "x" * 80 + "…" in message and "x" * 81 not in message and len(message) < 600


def test_the_cli_cuts_a_long_cell_in_a_score_error(tmp_path, capsys):
    data = _write(tmp_path / "s.csv", f"theme,reach,impact,confidence,effort\na,{_LONG},1,1,1\n")
    assert main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--framework", "rice"]) == 1
    err = capsys.readouterr().err
    assert "x" * 80 + "…" in err and "x" * 81 not in err


def test_a_thousand_long_column_names_are_listed_in_a_short_message():
    frame = pd.DataFrame({f"{'c' * 200}{i}": ["a"] for i in range(1000)})
    with pytest.raises(ColumnError, match=r"… 980 more\]") as info:
        fb.read_feedback(frame)
    assert len(str(info.value)) < 3000  # listed all 1000 names of 200 characters (200 KB)


# --- themes / report options ------------------------------------------------------------------------

def test_max_outlier_share_help_says_what_it_bounds(capsys):
    assert main(["themes", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "never below the floor of 0.35 cosine" in out and "the share can end higher" in out
    assert fb.ThemeModel().min_assign_threshold == 0.35  # the floor the help names


@pytest.mark.parametrize("command", ["report", "themes"])
def test_a_too_fine_freq_is_refused_before_any_embedding(tmp_path, capsys, monkeypatch, command):
    import feedback_nlp.cli as cli

    def no_embedding(args):
        raise AssertionError("the embedder was loaded before the options were checked")

    monkeypatch.setattr(cli, "_embedder", no_embedding)
    rows = "".join(f"{i},export fails {i},2026-0{1 + i % 3}-01\n" for i in range(30))
    data = _write(tmp_path / "in.csv", "id,text,created_at\n" + rows)
    code = main([command, "--in", data, "--out", str(tmp_path / "out"), "--freq", "min"])
    err = capsys.readouterr().err
    assert code == 2 and "--freq" in err and "periods (at most 10,000)" in err


def test_a_fine_freq_over_a_short_span_still_runs(tmp_path, hashed_cli):
    rows = "".join(f"{i},export fails {i % 3} {'x' * (i % 3)},2026-01-01T0{i % 8}:00:00\n" for i in range(30))
    data = _write(tmp_path / "in.csv", "id,text,created_at\n" + rows)
    assert main(["themes", "--in", data, "--out", str(tmp_path / "out"), "--freq", "h", "--min-theme-size", "5"]) == 0


# --- serve's argument types ---------------------------------------------------------------------------

@pytest.mark.parametrize("parse, text, message", [
    ("_port", "http", "expected an integer, got 'http'"), ("_port", "65536", "0-65535, got 65536"),
    ("_seconds", "soon", "expected a number, got 'soon'"), ("_seconds", "inf", ">= 0, got 'inf'"),
    ("_seconds", "-1", ">= 0, got '-1'"),
])
def test_serve_argument_types_keep_their_messages(parse, text, message):
    import argparse

    from feedback_nlp.service import _cli

    with pytest.raises(argparse.ArgumentTypeError, match=message):
        getattr(_cli, parse)(text)
    assert _cli._port("0") == 0 and _cli._seconds("2.5") == 2.5


# --- JSON documents are read a record at a time ---------------------------------------------------

def _records(n, text="Export to CSV fails"):
    return [{"id": str(i), "text": f"{text} {i}", "n": i * 1.5, "ok": i % 2 == 0, "none": None,
             "nested": {"a": [1, 2, {"b": "\\u00e9 \"q\""}]}} for i in range(n)]


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("shape", ["array", "object", "pretty"])
def test_a_json_document_read_in_small_blocks_gives_the_records_json_loads_gives(tmp_path, monkeypatch, block, shape):
    from feedback_nlp.connectors import _json

    monkeypatch.setattr(_json, "_BLOCK", block)  # every value, number and escape cut at a block boundary somewhere
    records = _records(40, "Café “quoted” 😀")
    doc = {"count": 40, "meta": [1, 2], "records": records, "next": None} if shape == "object" else records
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc, indent=2 if shape == "pretty" else None, ensure_ascii=False))
    got = pd.concat(list(fb.connectors.iter_table(path, "json", chunk_size=16)), ignore_index=True)
    assert got["_row"].tolist() == list(range(1, 41))
    assert got["text"].tolist() == [r["text"] for r in records]
    assert got["n"].tolist() == [str(r["n"]) for r in records]  # numbers kept as written
    assert "_error" not in got.columns


def test_a_minified_json_array_longer_than_the_line_limit_is_read(tmp_path, monkeypatch):
    from feedback_nlp.connectors import _tables

    monkeypatch.setattr(_tables, "MAX_LINE", 4096)  # 64 MB in production: a minified export is one line
    path = tmp_path / "one_line.json"
    path.write_text(json.dumps(_records(200)))
    data = fb.read_feedback(path)
    assert len(data.records) == 200 and len(data.rejected) == 0  # was "line 1 is longer than ..."


def test_reading_a_json_array_holds_a_chunk_not_the_file(tmp_path):
    import tracemalloc

    def peak(n):
        path = tmp_path / f"big{n}.json"
        path.write_text(json.dumps(_records(n, "The export to CSV cuts off long descriptions " * 3)))
        tracemalloc.start()
        rows = sum(len(c) for c in fb.connectors.iter_table(path, "json", chunk_size=1000))
        high = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert rows == n
        return high, path.stat().st_size

    (small, size), (large, _) = peak(8_000), peak(24_000)
    # the whole text and every parsed record were held: ~10 × the file, growing with it
    assert large < 1.3 * small, (small, large, size)


@pytest.mark.parametrize("body, match", [
    ('[{"id": "1", "text": "a"},\n{"id": "2", "text": "b"}\n{"id": "3"}]', r"expected ',' or '\]' after record 2 of the array \(line 3\)"),
    ('[{"id": "1", "text": "a"},\n{"id": "2", "text": }]', r"Expecting value in record 2 of the array .*line 2"),
    ('{"data": [{"id": "1", "text": "a"}], "x": [1]}\n{"data": []}', "extra data .*format='jsonl'"),
    ('{"data": [{"id": "1"}], "data": [{"id": "2"}]}', "the key 'data' is named twice"),
    ('{"a": [{"id": "1"}], "b": [{"id": "2"}]}', "holds several arrays"),
    ('"just a string"', "holds a JSON str, not an array of records"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_broken_json_documents_name_the_record_and_line(tmp_path, body, match):
    path = tmp_path / "bad.json"
    path.write_text(body)
    with pytest.raises(InputFileError, match=match):
        fb.read_feedback(path, format="json")


def test_a_json_record_with_a_utf8_line_in_a_latin1_document_is_rejected_alone(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_bytes(b'[\n{"id": "1", "text": "' + _LATIN + b'"},\n{"id": "2", "text": "' + _UTF8 + b'"}\n]\n')
    data = fb.read_feedback(path, encoding="latin-1")  # the whole file was refused, or garbled
    assert data.records["text"].tolist() == ["Café crème is cold"]
    assert data.rejected["row"].tolist() == [2] and "UTF-8 text" in data.rejected["reason"].iloc[0]


def test_vendor_json_exports_are_streamed_with_their_side_loads(tmp_path, monkeypatch):
    from feedback_nlp.connectors import _json
    from feedback_nlp.connectors.intercom import read_intercom
    from feedback_nlp.connectors.zendesk import read_zendesk

    monkeypatch.setattr(_json, "_BLOCK", 5)
    tickets = [{"id": i, "subject": f"Export {i}", "description": "fails", "requester_id": 7, "organization_id": 9,
                "via": {"channel": "email"}} for i in range(3)]
    zd = tmp_path / "zd.json"  # side-loads after the tickets: the whole document had to be read first
    zd.write_text(json.dumps({"tickets": tickets, "users": [{"id": 7, "name": "Ann"}],
                              "organizations": [{"id": 9, "name": "Acme"}], "count": 3}))
    frame = read_zendesk(zd).frame
    assert frame[["id", "author", "account_id"]].values.tolist() == [[str(i), "Ann", "Acme"] for i in range(3)]
    conv = {"type": "conversation", "id": "c1", "state": "open", "created_at": 1,
            "source": {"id": "s1", "body": "<p>Export fails</p>", "author": {"type": "user", "name": "Bo"}},
            "conversation_parts": {"conversation_parts": [
                {"id": "p1", "part_type": "comment", "body": "still broken", "author": {"type": "user"}}]}}
    ic = tmp_path / "ic.json"
    ic.write_text(json.dumps({"type": "conversation.list", "pages": {"next": None}, "conversations": [conv, conv]}))
    assert read_intercom(ic).frame["id"].tolist() == ["s1", "p1", "s1", "p1"]
    single = tmp_path / "one.json"
    single.write_text(json.dumps(conv))
    assert read_intercom(single).frame["id"].tolist() == ["s1", "p1"]
