"""Hostile and merely unusual inputs found by the sixth audit round: each test failed before its fix."""


import json

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import event, make_hook, post_json, write_file
from feedback_nlp import ColumnError, EncodingError, InputFileError, InvalidInputError
from feedback_nlp.cli import main

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
    lambda: fb.Deduper().fit(pd.DataFrame({_LONG: ["a"]})),
    lambda: fb.theme_scores(pd.DataFrame({"theme": [1]}), account_col=None, revenue_col=None, time_col=None,
                            weights={_LONG: 1}),
], ids=["column", "text-col", "label", "tag", "parent", "revenue", "dedupe-frame", "weight"])
def test_errors_quote_at_most_80_characters_of_a_value(call):
    with pytest.raises(fb.FeedbackNLPError) as info:
        call()
    message = str(info.value)
    assert "x" * 80 + "…" in message and "x" * 81 not in message and len(message) < 600


def test_the_cli_cuts_a_long_cell_in_a_score_error(tmp_path, capsys):
    data = write_file(tmp_path / "s.csv", f"theme,reach,impact,confidence,effort\na,{_LONG},1,1,1\n")
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
    data = write_file(tmp_path / "in.csv", "id,text,created_at\n" + rows)
    code = main([command, "--in", data, "--out", str(tmp_path / "out"), "--freq", "min"])
    err = capsys.readouterr().err
    assert code == 2 and "--freq" in err and "periods (at most 10,000)" in err


def test_a_fine_freq_over_a_short_span_still_runs(tmp_path, hashed_cli):
    rows = "".join(f"{i},export fails {i % 3} {'x' * (i % 3)},2026-01-01T0{i % 8}:00:00\n" for i in range(30))
    data = write_file(tmp_path / "in.csv", "id,text,created_at\n" + rows)
    assert main(["themes", "--in", data, "--out", str(tmp_path / "out"), "--freq", "h", "--min-theme-size", "5"]) == 0


# --- serve's argument types ---------------------------------------------------------------------------

@pytest.mark.parametrize("parse, text, message", [
    ("port", "http", "expected an integer, got 'http'"), ("port", "65536", "0-65535, got 65536"),
    ("seconds", "soon", "expected a number, got 'soon'"), ("seconds", "inf", ">= 0, got 'inf'"),
    ("seconds", "-1", ">= 0, got '-1'"),
])
def test_serve_argument_types_keep_their_messages(parse, text, message):
    import argparse

    from feedback_nlp.service import _cli

    with pytest.raises(argparse.ArgumentTypeError, match=message):
        getattr(_cli, parse)(text)
    assert _cli.port("0") == 0 and _cli.seconds("2.5") == 2.5


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


# --- the HTTP service ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, loc, message", [
    (b'{"items": [{"id": "m1", "text": "export fails", "metadata": {"a": "\\ud800"}}]}', "metadata",
     "value of 'a' holds U+D800"),  # was a 500 (UnicodeEncodeError in the SQLite insert)
    (b'{"items": [{"id": "m2", "text": "export fails", "metadata": {"\\udc80": 1}}]}', "metadata", "key"),
    (b'{"items": [{"id": "m3", "text": "export fails", "metadata": {"a": "x\\u0000y"}}]}', "metadata", "U+0000"),
    (b'{"items": [{"id": "m4", "text": "export fails", "metadata": {"a": NaN}}]}', "metadata", "is nan"),
    (b'{"items": [{"id": "m5", "text": "export fails", "metadata": {"a": 1e999}}]}', "metadata", "is inf"),
    (b'{"items": [{"id": "a\\u0000b", "text": "export fails"}]}', "id", "U+0000"),  # stored as given
    (b'{"items": [{"id": "ticket\\n42", "text": "export fails"}]}', "id", "U+000A"),
    (b'{"items": [{"id": "abc\\u202edef", "text": "export fails"}]}', "id", "U+202E"),  # shown as "abcfed"
])
def test_backlog_items_with_unstorable_ids_or_metadata_are_422_not_500_or_altered(api, raw, loc, message):
    r = post_json(api, "/v1/backlog", raw)  # NaN and inf metadata were stored as null
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and loc in error["message"] and message in error["message"]


@pytest.mark.parametrize("path, item", [
    ("/v1/score/rice", {"reach": "NaN", "impact": 1, "confidence": 1, "effort": 1}),
    ("/v1/score/rice", {"reach": True, "impact": 1, "confidence": 1, "effort": 1}),  # was scored as reach 1
    ("/v1/score/rice", {"reach": "10", "impact": 1, "confidence": 1, "effort": 1}),
    ("/v1/score/ice", {"impact": 1, "confidence": "Infinity", "ease": 1}),
    ("/v1/score/demand", {"theme": "a", "account_id": "x", "account_revenue": "NaN"}),  # was revenue 0
])
def test_score_requests_with_nan_booleans_or_strings_are_refused_by_field(api, path, item):
    body = json.dumps({"items": [{"id": "1", **item}]})
    body = body.replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")  # Python's JSON parser reads them
    r = post_json(api, path, body.encode())
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    assert r.json()["error"]["details"][0]["loc"].startswith("body.items[0].")


@pytest.mark.parametrize("extra, message", [
    ({"window": "abc"}, "window must be a duration such as 28D"),  # ignored without dates: 200
    ({"window": "-5D"}, "window must be a positive duration"),  # counted nothing: growth 0
    ({"window": "0D"}, "window must be a positive duration"),
])
def test_demand_with_an_unusable_window_is_refused(api, extra, message):
    items = [{"id": "1", "theme": "a", "created_at": "2026-01-01T00:00:00Z"}]
    r = post_json(api, "/v1/score/demand", {"items": items, **extra})
    assert r.status_code == 422 and message in r.json()["error"]["message"]
    with pytest.raises(InvalidInputError, match=message):
        fb.theme_scores(pd.DataFrame({"theme": ["a"]}), account_col=None, revenue_col=None, time_col=None, **extra)


def test_theme_scores_with_an_unreadable_now_is_an_input_error():
    df = pd.DataFrame({"theme": ["a"], "created_at": ["2026-01-01"]})
    with pytest.raises(InvalidInputError, match="now must be a time"):  # was pandas' DateParseError
        fb.theme_scores(df, account_col=None, revenue_col=None, now="yesterday")


def test_a_content_length_that_is_not_a_number_is_a_bad_request_not_too_large(api):
    r = api.post("/v1/tag", content=b"{}", headers={"content-length": "12abc", "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"  # was 413 "body over 1 MB"


@pytest.mark.parametrize("raw, status", [
    (b'{"items": [{"id": "1", "text": "export \\ud800 fails"}]}', 422),
    (b'{"items": [{"id": "1", "text": "\\u200b\\u200b"}]}', 422),
    (b'{"items": []}', 422),
    (b'{"items": [', 422),
    (b"[" * 50_000 + b"]" * 50_000, 422),  # was 400 "error parsing the body" (round 8b: a named 422)
])
def test_odd_tag_bodies_are_client_errors_not_crashes(api, raw, status):
    assert post_json(api, "/v1/tag", raw).status_code == status  # guards: each was a clear error before, too


def test_ids_and_metadata_that_are_plain_still_round_trip(api):
    item = {"id": "ZD-42 / https://x.io/t?q=1 é", "text": "export fails", "metadata": {"plan": "pro", "seats": 12.5}}
    assert post_json(api, "/v1/backlog", {"items": [item]}).status_code == 200
    from urllib.parse import quote

    got = api.get("/v1/backlog/" + quote(item["id"])).json()
    assert got["id"] == item["id"] and got["metadata"] == item["metadata"]


# --- the Quackback webhook receiver ------------------------------------------------------------------

@pytest.fixture
def hook(tmp_path):
    return make_hook(tmp_path)


@pytest.mark.parametrize("raw, reason", [
    (b'{"id": "e\\ud800", "type": "post.created", "data": {"post": {"id": "p", "title": "x"}}}', "lone surrogate"),
    (b'{"id": "e2", "type": "post.created", "data": {"post": {"id": "p\\udc80", "title": "x"}}}', "lone surrogate"),
    (b'{"id": "e3", "type": "post.created", "data": {"post": {"id": "p", "boardSlug": "\\ud800"}}}', "lone surrogate"),
    (b'{"id": "e\\u0000", "type": "post.created", "data": {"post": {"id": "p", "title": "x"}}}', "usable 'id'"),
    (b'{"id": "e5", "type": "post.created", "data": {"post": {"id": "p\\nq", "title": "x"}}}', "control characters"),
])
def test_signed_events_with_unstorable_ids_are_refused_with_400(hook, raw, reason):
    status, payload = hook(raw)  # the first was a 500 (which Quackback retries for ever), the rest failed later
    assert status == 400 and reason in payload["error"]
    assert hook.integration.store.counts()["failed"] == 0


def test_a_late_update_of_a_deleted_post_does_not_bring_it_back(hook):
    hook(event("e1", "post.created", {"id": "p1", "title": "Export fails", "content": "csv"}))
    hook(event("e2", "post.deleted", {"id": "p1"}, at="2026-01-03T00:00:00Z"))
    hook(event("e3", "post.updated", {"id": "p1", "title": "Export fails", "content": "csv!"}, at="2026-01-02T00:00:00Z"))
    post = hook.integration.store.post("p1")
    assert post["deleted"] == 1 and "p1" not in hook.backlog.items  # was undeleted and suggested as a duplicate
    assert hook.integration.store.event("e3")["result"]["action"] == "skipped"
    hook(event("e4", "post.updated", {"id": "p1", "title": "Export fails", "content": "back"}, at="2026-01-04T00:00:00Z"))
    assert hook.integration.store.post("p1")["deleted"] == 0  # a change after the deletion still counts


def test_an_older_status_change_arriving_late_does_not_undo_a_newer_one(hook):
    hook(event("e1", "post.status_changed", {"id": "p9", "title": "Dark mode"}, at="2026-01-05T00:00:00Z",
                newStatus="Complete", previousStatus="Planned"))
    hook(event("e2", "post.status_changed", {"id": "p9", "title": "Dark mode"}, at="2026-01-03T00:00:00Z",
                newStatus="Planned", previousStatus="Open"))
    post = hook.integration.store.post("p9")
    assert (post["status"], post["status_changed_at"]) == ("Complete", "2026-01-05T00:00:00Z")  # was Planned


@pytest.mark.parametrize("votes", [1.5, True, 10**30, {"n": 1}, -3])
def test_vote_counts_that_are_not_counts_are_not_stored(hook, votes):
    hook(event("e1", "post.created", {"id": "p1", "title": "Export fails", "content": "csv", "voteCount": 2,
                                       "boardSlug": {"a": 1}}))
    hook(event("e2", "post.voted", {"id": "p1", "voteCount": votes}))
    post = hook.integration.store.post("p1")
    assert post["votes"] == 2 and post["board"] is None  # 10**30 failed the event; the others were stored
    assert hook.integration.store.counts()["failed"] == 0


def test_quackback_suggestions_refuse_a_min_score_that_is_not_finite(hook):
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from feedback_nlp.integrations.quackback._asgi import PREFIX, quackback_routes

    client = TestClient(Starlette(routes=quackback_routes(hook.integration)))
    assert client.get(f"{PREFIX}/suggestions?min_score=nan").status_code == 422  # was 200 with nothing
    assert client.get(f"{PREFIX}/suggestions?min_score=0.5").status_code == 200


# --- CSV dialects -------------------------------------------------------------------------------------

def test_excels_sep_line_names_the_delimiter_and_keeps_line_numbers(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"sep=;\r\nid;text\r\n1;export fails, again\r\n2;\r\n")
    data = fb.read_feedback(path)  # was: text column 'text' not found; available columns: ['sep=', 'Unnamed: 1']
    assert data.records[["id", "text", "row"]].values.tolist() == [["1", "export fails, again", 3]]
    assert data.rejected["row"].tolist() == [4]


@pytest.mark.parametrize("header", ["id,\u200btext", "\u2060id,text\u200d", "id,\ufefftext"])
def test_invisible_characters_around_a_column_name_are_dropped(tmp_path, header):
    path = tmp_path / "z.csv"
    path.write_text(f"{header}\n1,export fails\n")
    assert fb.read_feedback(path).records["text"].tolist() == ["export fails"]  # 'text' was not found


def test_a_column_named_in_another_case_is_pointed_out(tmp_path, capsys):
    data = write_file(tmp_path / "c.csv", "ID,Text\n1,export fails\n")
    with pytest.raises(ColumnError, match="'Text' differs only in case: pass text_col='Text'"):
        fb.read_feedback(data)
    assert main(["dedupe", "--in", data, "--out", str(tmp_path / "o.csv")]) == 2
    assert "differs only in case: pass --text-col Text" in capsys.readouterr().err


# --- score: absurd numbers and CLI wording --------------------------------------------------------------

def test_a_rice_score_that_overflows_is_refused_not_written_as_inf(tmp_path, capsys):
    with pytest.raises(InvalidInputError, match="infinite score"):
        fb.rice(1e308, 3, 1, 0.001)
    data = write_file(tmp_path / "r.csv", "theme,reach,impact,confidence,effort\na,10,1,1,1\nb,1e308,3,1,0.001\n")
    assert main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--framework", "rice"]) == 1
    err = capsys.readouterr().err
    assert "gives an infinite score" in err and "at line 3" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("body, extra, message", [
    ("theme,account_id,account_revenue\na,x,10\nb,y,-5\n", ["--time-col", ""], "negative values at line 3"),
    ("theme,account_id,created_at\na,x,2026-01-01\nb,y,never\n", ["--revenue-col", ""], "unparseable dates at line 3"),
])
def test_demand_score_errors_name_lines_not_rows_from_zero(tmp_path, capsys, body, extra, message):
    data = write_file(tmp_path / "d.csv", body)  # said "in rows [1]": a 0-based position
    assert main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), *extra]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("body, framework, advice", [
    ("theme,score\na,1\n", "moscow", "pass --cutoffs MUST,SHOULD,COULD"),  # was "cutoffs={'must':..}"
    ("theme,reach,impact,confidence,effort\na,10,1,80,1\n", "rice", "or pass --confidence-scale percent"),
])
def test_score_errors_give_the_commands_options_not_the_apis(tmp_path, capsys, body, framework, advice):
    data = write_file(tmp_path / "s.csv", body)
    assert main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--framework", framework]) == 1
    err = capsys.readouterr().err
    assert advice in err and "=" not in err.split("error:")[1].split(advice)[0][-40:]


# --- API keys -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ci\nkey_0123\tadmin\tactive", "tab\there", "evil\u202eadmin", "bytes\udcff"])
def test_a_key_name_that_would_forge_a_line_of_keys_list_is_refused(tmp_path, capsys, name):
    pytest.importorskip("fastapi")
    code = main(["keys", "create", "--data", str(tmp_path / "d"), "--name", name])
    err = capsys.readouterr().err
    assert code != 0 and "may not hold control" in err  # was stored, and printed as two rows by `keys list`
    assert main(["keys", "list", "--data", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out == ""


# --- dedupe / themes with degenerate embeddings -------------------------------------------------------------

_E = np.random.default_rng(0).random((12, 8)).astype(np.float32)
_T = [f"export item {i}" for i in range(12)]
_NAN = _E.copy()
_NAN[3, 2] = np.nan


@pytest.mark.parametrize("call, match", [
    (lambda: fb.Deduper().fit(_T, embeddings=_NAN), r"not finite \(NaN or inf\) at rows \[3\]"),  # grouped with NaN
    (lambda: fb.Deduper().fit(_T, embeddings=_E).find("x", embeddings=_NAN[3:4], k=2), "not finite"),  # NaN scores
    (lambda: fb.Deduper().fit(_T, embeddings=np.full((12, 8), "a")), "embeddings must be numbers"),
    (lambda: fb.ThemeModel(min_theme_size=2).fit(_T, embeddings=np.full((12, 8), "a")), "embeddings must be numbers"),
    (lambda: fb.ThemeModel(min_theme_size=2).fit(_T, embeddings=np.zeros((12, 0))), r"dim >= 1, got \(12, 0\)"),
])
def test_unusable_precomputed_embeddings_are_input_errors(call, match):
    with pytest.raises(InvalidInputError, match=match):  # were silent NaN scores, a raw ValueError, all outliers
        call()


def test_a_window_beyond_pandas_range_says_so():
    with pytest.raises(InvalidInputError, match="at most 292 years"):
        fb.theme_scores(pd.DataFrame({"theme": ["a"]}), account_col=None, revenue_col=None, time_col=None,
                        window="300000D")


def test_a_jsonl_file_with_classic_mac_line_ends_reads_every_record(tmp_path):
    path = tmp_path / "mac.jsonl"
    path.write_bytes(b'{"id": "1", "text": "export fails"}\r{"id": "2", "text": "dark mode"}\r')
    data = fb.read_feedback(path)  # was one line rejected whole: "malformed JSON line (Extra data)"
    assert data.records[["id", "row"]].values.tolist() == [["1", 1], ["2", 2]] and len(data.rejected) == 0


@pytest.mark.parametrize("headers", [{"content-type": "text/plain"}, {}])
def test_a_json_body_sent_without_a_json_content_type_says_so(api, headers):
    r = api.post("/v1/tag", content=b'{"items": [{"id": "1", "text": "export fails"}]}', headers=headers)
    assert r.status_code == 422  # said "Input should be a valid dictionary or object to extract fields from"
    assert "Content-Type: application/json" in r.json()["error"]["message"]


@pytest.mark.parametrize("field", [
    {"voteCount": "abc"}, {"voteCount": {"n": 1}}, {"voteCount": float("nan")}, {"commentCount": "x"},
    {"statusId": ["a"]}, {"tags": [{"id": "t1", "name": None}]}, {"createdAt": 12345}, {"boardSlug": {"x": 1}},
])
def test_quackback_pull_keeps_reading_posts_with_fields_of_the_wrong_type(field):
    from feedback_nlp.integrations.quackback import posts_to_records

    good = {"id": "p0", "title": "Dark mode", "content": "please", "voteCount": 3, "boardSlug": "ideas",
            "tags": [{"id": "t1", "name": "ui"}], "createdAt": "2026-01-02T00:00:00Z"}
    df = posts_to_records([good, {**good, "id": "p1", **field}])  # a ValueError/TypeError stopped the pull
    bad = df.iloc[1]
    assert len(df) == 2 and df.iloc[0]["votes"] == 3
    assert "None" not in bad["tags"] and not isinstance(bad["source"], dict)  # a tag named "None", a dict as board
    assert pd.isna(bad["created_at"]) or bad["created_at"].year == 2026  # 12345 was read as nanoseconds in 1970


@pytest.mark.parametrize("encoding", ["rot13", "hex", "base64", "zlib", "idna", "punycode", "undefined",
                                      "unicode_escape", "utf-7"])
@pytest.mark.parametrize("name", ["t.csv", "t.jsonl", "t.json"])
def test_an_encoding_that_is_no_text_file_encoding_is_refused(tmp_path, capsys, encoding, name):
    path = tmp_path / name
    path.write_text({"t.csv": "id,text\n1,C:\\new+folder fails\n", "t.jsonl": '{"id": "1", "text": "a+b"}\n',
                     "t.json": '[{"id": "1", "text": "a+b"}]'}[name])
    with pytest.raises(InvalidInputError, match="is not an encoding of text files"):
        fb.read_feedback(path, encoding=encoding)  # unexpected LookupError/UnicodeError, or "C:\new" altered
    # a usage error (round 17f: the option is checked with the others, exit 2; it was exit 1, as bad data)
    assert main(["dedupe", "--in", str(path), "--out", str(tmp_path / "o.csv"), "--encoding", encoding]) == 2
    assert "unexpected" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["s.jsonl", "s.json"])
def test_escaped_lone_surrogates_in_json_reject_their_record_only(tmp_path, name):
    lines = ['{"id": "a\\ud800", "text": "export fails"}', '{"id": "2", "text": "dark mode", "author": "x\\udc80"}',
             '{"id": "3", "text": "emoji \\ud83d\\ude00 ok"}']  # a pair is one character: kept
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" if name.endswith("l") else "[" + ",\n".join(lines) + "]")
    data = fb.read_feedback(path)  # was an unexpected UnicodeEncodeError from pandas for the whole file
    assert data.records[["id", "text"]].values.tolist() == [["3", "emoji 😀 ok"]]
    assert data.rejected["row"].tolist() == [1, 2]
    assert data.rejected["reason"].str.contains("escaped lone surrogate").all()


def test_a_slack_message_with_an_escaped_lone_surrogate_is_rejected_alone(tmp_path):
    export = tmp_path / "slack"
    (export / "general").mkdir(parents=True)
    (export / "channels.json").write_text('[{"id": "C1", "name": "general"}]')
    (export / "users.json").write_text('[{"id": "U1", "name": "ann\\ud800"}]')  # a broken name: the id is shown
    (export / "general" / "2026-01-05.json").write_text(
        '[{"type": "message", "user": "U1", "text": "export fails", "ts": "1767607320.000200"},'
        ' {"type": "message", "user": "U2", "text": "bad \\udc80 text", "ts": "1767607321.000200"}]')
    data = fb.read_feedback(export)  # was an unexpected UnicodeEncodeError for the whole export
    assert data.records[["text", "author"]].values.tolist() == [["export fails", "U1"]]
    assert data.rejected["row"].tolist() == [2] and "lone surrogate" in data.rejected["reason"].iloc[0]


@pytest.mark.parametrize("freq", ["300Y", "1000Y"])
def test_a_period_beyond_pandas_time_range_is_a_usage_error_not_an_overflow(tmp_path, capsys, monkeypatch, freq):
    import feedback_nlp.cli as cli

    monkeypatch.setattr(cli, "_embedder", lambda args: pytest.fail("embedded before the options were checked"))
    data = write_file(tmp_path / "d.csv", "id,text,created_at\n1,export fails,2026-01-01\n2,dark mode,2026-02-01\n")
    assert main(["themes", "--in", data, "--out", str(tmp_path / "t"), "--freq", freq]) == 2  # unexpected OutOfBounds
    assert "--freq: expected a period" in capsys.readouterr().err
    tm = fb.ThemeModel(min_theme_size=2).fit(_T, timestamps=["2026-01-01"] * 12, embeddings=_E)
    with pytest.raises(InvalidInputError, match="longer than the ~292 years"):
        tm.trends(freq)


def test_an_unclosed_string_in_a_json_document_stops_at_the_record_limit(tmp_path, monkeypatch):
    from feedback_nlp.connectors import _json

    monkeypatch.setattr(_json, "_BLOCK", 64)
    monkeypatch.setattr(_json, "MAX_RECORD", 4096)  # 64 MB in production
    path = tmp_path / "open.json"
    path.write_text('[{"id": "1", "text": "a"}, {"id": "2", "text": "never closed ' + "x" * 20_000 + "\n" * 10 + "]")
    with pytest.raises(InputFileError, match="record 2 of the array is longer than 0 MB"):
        list(fb.connectors.iter_table(path, "json"))  # read the rest of the file, however large, into memory


def test_a_json_record_larger_than_a_block_is_parsed_whole(tmp_path, monkeypatch):
    from feedback_nlp.connectors import _json

    monkeypatch.setattr(_json, "_BLOCK", 7)
    text = "é" * 50_000 + ' "quoted" \\ end'
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"id": "1", "text": text}, {"id": "2", "text": "short"}]))
    got = pd.concat(list(fb.connectors.iter_table(path, "json")))
    assert got["text"].tolist() == [text, "short"]


def test_a_survey_error_lists_its_long_question_names_cut(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text(",".join(f"{'q' * 300}{i}" for i in range(40)) + "\n" + ",".join(["1"] * 40) + "\n")
    with pytest.raises(InputFileError, match="no free-text question") as info:
        fb.read_feedback(path, format="survey")
    assert len(str(info.value)) < 3000 and "… 20 more" in str(info.value)  # listed 40 names of 300 characters


@pytest.mark.parametrize("name", ["zd.json.gz", "zd.jsonl.gz"])
def test_a_gzipped_vendor_export_is_recognised_like_the_plain_file(tmp_path, name):
    import gzip

    ticket = {"id": 1, "subject": "CSV export cuts text", "description": "fails", "requester_id": 7,
              "via": {"channel": "email"}}
    doc = json.dumps({"tickets": [ticket], "users": [{"id": 7, "name": "Ann"}]}) if "jsonl" not in name \
        else json.dumps(ticket) + "\n"
    (tmp_path / name).write_bytes(gzip.compress(doc.encode()))
    data = fb.read_feedback(tmp_path / name)  # was: text column 'text' not found (read as a generic table)
    assert data.records[["id", "text"]].values.tolist() == [["1", "CSV export cuts text fails"]]


def test_decimal_and_fraction_numbers_are_scored_like_floats():
    from decimal import Decimal
    from fractions import Fraction

    reach = pd.Series([Decimal("10"), Decimal("2.5")])  # a NUMERIC column read with pandas.read_sql
    assert fb.rice(reach, 1, Fraction(1, 2), 1).tolist() == [5.0, 1.25]  # "reach must be numeric"
    with pytest.raises(InvalidInputError, match="must be numeric"):
        fb.rice([1 + 2j], 1, 1, 1)


@pytest.mark.parametrize("written, amount", [
    ("1,5", 1.5), ("12,34", 12.34), ("1.200,50", 1200.5), ("1.234.567", 1234567.0),  # 15, 1234, 1.2005, rejected
    ("$1,200.50", 1200.5), ("1 200", 1200.0), ("1'200.50", 1200.5), ("+3", 3.0), ("€ 250", 250.0),
    ("1,200", 1200.0), ("1.5", 1.5),  # the readings that were right stay
])
def test_revenue_amounts_in_european_and_us_notation_are_read_not_garbled(written, amount):
    df = pd.DataFrame({"id": ["a"], "text": ["export fails"], "account_id": ["x"], "account_revenue": [written]})
    assert fb.read_feedback(df).records["account_revenue"].tolist() == [amount]


@pytest.mark.parametrize("written", ["1,2345", "1,000,00", "1,200.5.3", "(100)", "100k"])
def test_revenue_amounts_whose_separators_cannot_be_told_apart_are_rejected(written):
    df = pd.DataFrame({"id": ["a"], "text": ["export fails"], "account_id": ["x"], "account_revenue": [written]})
    data = fb.read_feedback(df)  # "1,2345" was read as 12345
    assert len(data.records) == 0 and "is not a non-negative number" in data.rejected["reason"].iloc[0]


def test_a_decimal_revenue_is_a_number():
    from decimal import Decimal

    df = pd.DataFrame({"id": ["a"], "text": ["export fails"], "account_id": ["x"],
                       "account_revenue": pd.Series([Decimal("10.50")], dtype=object)})
    assert fb.read_feedback(df).records["account_revenue"].tolist() == [10.5]


@pytest.mark.parametrize("command", ["report", "themes"])
@pytest.mark.parametrize("last, message", [
    ("9999-12-31", "more than the ~292 years"),  # a placeholder for "never": was an OutOfBounds error after embedding
    ("2226-01-01", "between the first and the last item into about 10,4"),  # a typo: 10,436 weeks
])
def test_a_placeholder_date_is_named_before_any_embedding(tmp_path, capsys, monkeypatch, command, last, message):
    import feedback_nlp.cli as cli

    monkeypatch.setattr(cli, "_embedder", lambda args: pytest.fail("embedded before the dates were checked"))
    data = write_file(tmp_path / "d.csv", f"id,text,created_at\n1,export fails,2026-01-01\n2,dark mode,{last}\n"
                                      "3,login,1767607320\n")
    assert main([command, "--in", data, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("placeholder date") == 1


def test_a_repeated_header_line_from_joined_files_is_rejected_not_read_as_an_item(tmp_path):
    path = tmp_path / "joined.csv"  # cat january.csv february.csv > joined.csv
    path.write_text("ticket,body,channel\n1,export fails,email\n ticket , body ,channel\n2,dark mode,chat\n")
    data = fb.read_feedback(path, text_col="body", id_col="ticket", source_col="channel")
    assert data.records["id"].tolist() == ["1", "2"]  # an item "body" with the id "ticket" was read
    assert data.rejected[["row", "reason"]].values.tolist() == [[3, "the header line repeated (files joined together?)"]]


@pytest.mark.parametrize("body, reason", [
    ('{"id": "1", "text": "export fails", "id": "2"}', "names the key(s) 'id' twice"),
    ('{"id": "1", "text": "a \\ud800 b"}', "escaped lone surrogate"),
])
def test_a_json_file_of_one_record_rejects_that_record_like_an_array_would(tmp_path, body, reason):
    path = tmp_path / "one.json"
    path.write_text(body)
    data = fb.read_feedback(path, format="json")
    assert len(data.records) == 0 and reason in data.rejected["reason"].iloc[0]


@pytest.mark.parametrize("origin", ["null", "https://app.acme.com/", "app.acme.com", "https://app.acme.com/path",
                                    "javascript:alert(1)"])
def test_cors_origins_that_are_unsafe_or_never_match_are_refused(origin):
    pytest.importorskip("fastapi")
    from feedback_nlp.service import ServiceConfig

    with pytest.raises(InvalidInputError, match="is not scheme://host"):  # 'null' let any sandboxed page call
        ServiceConfig(cors_origins=(origin,))
    assert ServiceConfig(cors_origins=("https://app.acme.com", "http://localhost:3000")).cors_origins


def test_updating_themes_with_no_new_items_returns_no_labels():
    tm = fb.ThemeModel(min_theme_size=2).fit(_T, embeddings=_E)
    before = tm.labels_.copy()
    assert tm.update([], embeddings=np.zeros((0, 8), np.float32)).tolist() == []  # was the 12 old items' labels
    assert len(tm.labels_) == len(before)


def test_the_quackback_client_never_follows_a_redirect_to_another_origin_with_the_key():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from feedback_nlp.integrations.quackback import QuackbackClient
    from feedback_nlp.integrations.quackback._errors import QuackbackAPIError
    from feedback_nlp.integrations.quackback._secrets import Secret

    seen = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            self._answer(200, b'{"data": []}')

        def _answer(self, code, body, location=None):
            self.send_response(code)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    other = HTTPServer(("127.0.0.1", 0), Elsewhere)

    class Portal(Elsewhere):
        def do_GET(self):  # noqa: N802
            if self.path.startswith("/api/v1/tags"):
                self._answer(302, b"", f"http://127.0.0.1:{other.server_port}/steal")
            else:
                self._answer(302, b"", "/api/v1/tags/")  # same origin: followed

    portal = HTTPServer(("127.0.0.1", 0), Portal)
    for server in (other, portal):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = QuackbackClient(f"http://127.0.0.1:{portal.server_port}", Secret("qb_live_secret"), max_retries=0)
        with pytest.raises(QuackbackAPIError, match="redirected .* to another origin"):
            client.request("GET", "/moved")
        assert seen == []  # the key went to the other host with the redirect
    finally:
        portal.shutdown()
        other.shutdown()


def test_the_quackback_client_stops_reading_an_endless_answer(monkeypatch):
    import io

    from feedback_nlp.integrations.quackback import _client
    from feedback_nlp.integrations.quackback._errors import QuackbackAPIError

    monkeypatch.setattr(_client, "MAX_RESPONSE_BYTES", 1024)  # 64 MB in production
    with pytest.raises(QuackbackAPIError, match="longer than 0 MB: not the Quackback API"):
        _client._bounded_read(io.BytesIO(b"x" * 5000), "GET", "https://q.example/api/v1/posts")  # read it all
    assert _client._bounded_read(io.BytesIO(b'{"data": []}'), "GET", "https://q.example/x") == b'{"data": []}'


def test_demand_scores_of_a_tagged_csv_count_each_tag_of_a_multi_label_cell(tmp_path):
    data = write_file(tmp_path / "tagged.csv", "id,text,tags\n1,a,bug|export\n2,b,bug\n3,c,export | ui\n")
    out = tmp_path / "scores.csv"
    base = ["score", "--in", data, "--out", str(out), "--group-col", "tags", "--account-col", "", "--revenue-col", "",
            "--time-col", ""]
    assert main(base) == 0  # "bug|export" was a group of its own, beside "bug" and "export"
    assert dict(pd.read_csv(out)[["tags", "volume"]].values.tolist()) == {"bug": 2, "export": 2, "ui": 1}
    assert main([*base, "--group-sep", ""]) == 0
    assert sorted(pd.read_csv(out)["tags"]) == ["bug", "bug|export", "export | ui"]
