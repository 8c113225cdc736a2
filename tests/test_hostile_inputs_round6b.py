"""Hostile and merely unusual inputs, round 6 (part b): each test failed before its fix."""


import gzip
import json
import re
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import event, make_hook, post_json, write_file
from feedback_nlp import InvalidInputError
from feedback_nlp.cli import main
from feedback_nlp.errors import UsageError
from feedback_nlp.records import read_table, write_table

# --- outputs are what their extension says ------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sample, sample_vectors, embedder):
    clf = fb.TagClassifier(embedder).fit(sample_vectors, sample["request_type"])
    return clf.save(tmp_path_factory.mktemp("model") / "request-type")


_BACKLOG = ("id,text\n1,Export to CSV fails on long rows\n2,\n3,Please add dark mode\n4,Login page is slow\n"
            "5,=HYPERLINK(\"http://x\")\n")


def test_a_json_output_is_one_json_array_and_so_is_its_errors_file(model_dir, tmp_path, cache_path):
    data = write_file(tmp_path / "in.csv", _BACKLOG)
    out = tmp_path / "tagged.json"
    summary = fb.tag_file(model_dir, data, out, chunk_size=2, cache=cache_path, progress=False)
    rows = json.loads(out.read_text())  # was JSON lines: json.loads failed on the second line
    assert isinstance(rows, list) and [r["id"] for r in rows] == ["1", "3", "4", "5"]
    assert rows[3]["id"] == "5" and isinstance(rows[0]["tags"], list) and isinstance(rows[0]["probabilities"], dict)
    errors = json.loads(Path(summary.errors).read_text())
    assert summary.errors.endswith("tagged.errors.json") and [e["id"] for e in errors] == ["2"]


def test_a_json_output_of_no_rows_is_an_empty_array(model_dir, tmp_path, cache_path):
    data = write_file(tmp_path / "in.csv", "id,text\n1,Export fails\n")
    out = tmp_path / "t.jsonl"
    errors = tmp_path / "e.json"
    fb.tag_file(model_dir, data, out, errors_path=errors, cache=cache_path, progress=False)
    assert json.loads(errors.read_text()) == [] and len(out.read_text().splitlines()) == 1


def test_resuming_a_tag_job_into_a_json_array_gives_one_array(model_dir, tmp_path, cache_path):
    data = write_file(tmp_path / "in.csv", _BACKLOG)
    out = tmp_path / "tagged.json"

    def crash(index):
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fb.tag_file(model_dir, data, out, chunk_size=2, cache=cache_path, progress=False, chunk_hook=crash)
    assert not out.exists()
    summary = fb.tag_file(model_dir, data, out, chunk_size=2, cache=cache_path, progress=False, resume=True)
    assert summary.chunks_reused == 2  # the hook runs once a chunk is on disk
    assert [r["id"] for r in json.loads(out.read_text())] == ["1", "3", "4", "5"]


@pytest.mark.parametrize("name", ["tagged.csv.gz", "tagged.jsonl.gz", "tagged.json.gz"])
def test_a_gz_tag_output_is_gzip_compressed(model_dir, tmp_path, cache_path, name):
    data = write_file(tmp_path / "in.csv", _BACKLOG)
    out = tmp_path / name
    fb.tag_file(model_dir, data, out, cache=cache_path, progress=False)
    with gzip.open(out, "rt", encoding="utf-8") as fh:  # was plain text named .gz: BadGzipFile
        text = fh.read()
    assert "Export" not in text and "3" in text  # tag outputs carry ids, not texts
    assert read_table(out)["id"].astype(str).tolist() == ["1", "3", "4", "5"]


@pytest.mark.parametrize("name, parse", [
    ("o.json", lambda p: json.loads(p.read_text())),
    ("o.json.gz", lambda p: json.loads(gzip.decompress(p.read_bytes()))),
    ("o.ndjson", lambda p: [json.loads(line) for line in p.read_text(encoding="utf-8").rstrip("\n").split("\n")]),
    ("o.jsonl", lambda p: [json.loads(line) for line in p.read_text(encoding="utf-8").rstrip("\n").split("\n")]),
])
def test_write_table_writes_what_the_extension_says(tmp_path, name, parse, monkeypatch):
    import feedback_nlp.records as records

    monkeypatch.setattr(records, "_JSON_FRAME_ROWS", 2)  # several frames into one array
    df = pd.DataFrame({"id": ["a", "b", "c"], "text": ["line\nbreak \u2028 sep", "é", '"q"'],
                       "tags": [["x", "y"], [], ["z"]]})
    path = write_table(df, tmp_path / name)
    assert parse(path) == [{"id": "a", "text": "line\nbreak \u2028 sep", "tags": ["x", "y"]},
                           {"id": "b", "text": "é", "tags": []}, {"id": "c", "text": '"q"', "tags": ["z"]}]
    assert read_table(path)["text"].tolist() == df["text"].tolist()  # and it reads back


@pytest.mark.parametrize("name", ["o.txt", "o.xlsx", "o.parquet.gz", "o", "o.json.zip"])
def test_an_output_name_that_says_no_format_is_a_usage_error_before_any_work(tmp_path, capsys, monkeypatch, name):
    import feedback_nlp.cli as cli

    monkeypatch.setattr(cli, "_embedder", lambda args: (_ for _ in ()).throw(AssertionError("embedded first")))
    data = write_file(tmp_path / "in.csv", "id,text,theme\n1,a,x\n")
    for argv in (["score", "--in", data, "--out", str(tmp_path / name)],
                 ["dedupe", "--in", data, "--out", str(tmp_path / name)],
                 ["tag", "--model", "request-type", "--in", data, "--out", str(tmp_path / "t.csv"),
                  "--errors", str(tmp_path / name)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cannot tell the output format" in err and ".json (one JSON array)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_score_and_dedupe_write_a_json_array(tmp_path, hashed_cli):
    data = write_file(tmp_path / "in.csv", "id,text,theme\n1,Export fails,a\n2,Export fails,a\n3,Dark mode,b\n")
    assert main(["score", "--in", data, "--out", str(tmp_path / "s.json"), "--account-col", "",
                 "--revenue-col", "", "--time-col", ""]) == 0
    assert sorted(r["theme"] for r in json.loads((tmp_path / "s.json").read_text())) == ["a", "b"]
    assert main(["dedupe", "--in", data, "--out", str(tmp_path / "d.json")]) == 0
    groups = json.loads((tmp_path / "d.json").read_text())
    assert sorted(r["id"] for r in groups) == ["1", "2"]


def test_quackback_pull_refuses_an_unknown_output_format_before_any_request(tmp_path, capsys):
    key = write_file(tmp_path / "key", "qb_secret")
    code = main(["quackback", "pull", "--url", "http://127.0.0.1:9", "--key-file", key,
                 "--out", str(tmp_path / "posts.txt")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot tell the output format" in err  # was a connection error, or the pull then a crash


# --- a tag holding the separator of tags in CSV cells ------------------------------------------------------

def test_a_taxonomy_tag_id_holding_the_csv_tag_separator_is_refused_by_name():
    with pytest.raises(fb.TaxonomyError, match=r"tag id 'bug\|crash' holds '\|'"):
        fb.Taxonomy([{"id": "bug|crash", "name": "Bug or crash"}, {"id": "feature", "name": "Feature"}])


@pytest.mark.parametrize("labels, extra, message", [
    (["bug|crash", "feature"] * 4, [], r"the tag 'bug\|crash' holds '\|'.*or --multi-label.* at lines 2, 4, 6, 8"),
    (["bug|crash;ui", "feature"] * 4, ["--multi-label", "--sep", ";"], r"the tag 'bug\|crash' holds '\|'"),
])
def test_training_on_a_tag_holding_the_separator_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                                            labels, extra, message):
    import feedback_nlp.cli as cli

    monkeypatch.setattr(cli, "_embedder", lambda args: (_ for _ in ()).throw(AssertionError("embedded first")))
    rows = "".join(f"{i},text number {i},{label}\n" for i, label in enumerate(labels))
    data = write_file(tmp_path / "l.csv", "id,text,label\n" + rows)
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), *extra]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "m").exists()


def test_a_model_with_a_separator_tag_cannot_write_csv_but_can_write_json(tmp_path, cache_path, embedder):
    texts = ["app crashes on start", "crash when saving", "please add dark mode", "add an export button"] * 3
    labels = ["bug|crash", "bug|crash", "feature", "feature"] * 3
    folder = fb.TagClassifier(embedder).fit(embedder.encode(texts), labels).save(tmp_path / "m")
    data = write_file(tmp_path / "in.csv", "id,text\n1,the app crashes\n")
    with pytest.raises(UsageError, match=r"tag 'bug\|crash' holds '\|'.*write .jsonl"):
        fb.tag_file(folder, data, tmp_path / "t.csv", cache=cache_path, progress=False)
    assert not (tmp_path / "t.csv.parts").exists()
    fb.tag_file(folder, data, tmp_path / "t.json", cache=cache_path, progress=False)
    assert json.loads((tmp_path / "t.json").read_text())[0]["tags"] == ["bug|crash"]  # kept whole


def test_a_list_cell_that_would_be_ambiguous_in_csv_is_refused_not_written(tmp_path):
    df = pd.DataFrame({"id": ["1"], "tags": [["bug|crash", "ui"]]})
    with pytest.raises(InvalidInputError, match=r"column 'tags': the value 'bug\|crash' holds '\|'"):
        write_table(df, tmp_path / "o.csv")  # was "bug|crash|ui": three tags
    assert list(tmp_path.iterdir()) == []
    write_table(df, tmp_path / "o.parquet")
    assert read_table(tmp_path / "o.parquet")["tags"].map(list).tolist() == [["bug|crash", "ui"]]


# --- the HTTP service: a key named twice, HEAD ----------------------------------------------------------

@pytest.fixture
def hook(tmp_path):
    return make_hook(tmp_path)


@pytest.mark.parametrize("raw, key", [
    (b'{"model": "t", "items": [{"id": "1", "text": "export fails", "text": "dark mode"}]}', "text"),
    (b'{"items": [{"id": "1", "text": "export fails"}], "items": []}', "items"),
    (b'{"id": "a", "id": "b", "text": "export fails"}', "id"),
])
def test_a_key_named_twice_in_a_request_body_is_refused_by_name(api, raw, key):
    for path in ("/v1/tag", "/v1/backlog"):
        r = post_json(api, path, raw)  # was 200: the last "text" was tagged, the first silently dropped
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_request" and f"the key '{key}' is named twice" in error["message"]
        assert error["details"][0]["type"] == "duplicate_key"


def test_the_same_key_in_two_objects_is_not_a_repeat(api):
    r = post_json(api, "/v1/tag", b'{"items": [{"id": "1", "text": "export fails"}, {"id": "2", "text": "dark mode"}]}')
    assert r.status_code == 200 and [t["id"] for t in r.json()["results"]] == ["1", "2"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_a_health_check_answers_like_get_without_a_body(api, path):
    get, head = api.get(path), api.head(path)
    assert head.status_code == get.status_code == 200  # was 405
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_head_on_a_post_only_route_is_still_405(api):
    assert api.head("/v1/tag").status_code == 405


def test_a_signed_webhook_body_naming_a_key_twice_is_refused(hook):
    raw = (b'{"id": "e1", "type": "post.created", "data": {"post": {"id": "p1", "title": "Export fails", '
           b'"title": "Dark mode"}}}')
    status, payload = hook(raw)  # was accepted: the post was stored as "Dark mode"
    assert status == 400 and "names the key 'title' twice" in payload["error"]
    assert hook.integration.store.counts()["failed"] == 0


# --- Quackback: events delivered out of order -------------------------------------------------------------

def _text(hook, post_id):
    return hook.integration.store.post(post_id)["text"]


def test_an_older_post_update_arriving_late_does_not_overwrite_a_newer_text(hook):
    hook(event("e1", "post.created", {"id": "p1", "title": "Export", "content": "csv fails"}, at="2026-01-01T00:00:00Z"))
    hook(event("e3", "post.updated", {"id": "p1", "title": "Export", "content": "csv fails on long rows"},
                at="2026-01-03T00:00:00Z"))
    status, _ = hook(event("e2", "post.updated", {"id": "p1", "title": "Export", "content": "csv is slow"},
                            at="2026-01-02T00:00:00Z"))  # retried, delivered last
    assert status == 202 and "long rows" in _text(hook, "p1")  # was "csv is slow"
    assert hook.integration.store.event("e2")["result"]["action"] == "skipped"
    hook(event("e4", "post.updated", {"id": "p1", "title": "Export", "content": "csv fixed?"}, at="2026-01-04T00:00:00Z"))
    assert "fixed" in _text(hook, "p1")  # a newer one still applies


def test_a_stale_vote_count_does_not_replace_a_newer_one(hook):
    post = {"id": "p1", "title": "Dark mode", "content": "please"}
    hook(event("e1", "post.created", {**post, "voteCount": 1}, at="2026-01-01T00:00:00Z"))
    hook(event("e3", "post.voted", {"id": "p1", "voteCount": 7}, at="2026-01-03T00:00:00Z"))
    hook(event("e2", "post.voted", {"id": "p1", "voteCount": 4}, at="2026-01-02T00:00:00Z"))
    assert hook.integration.store.post("p1")["votes"] == 7  # was 4
    # an update older than the last vote carries an older count: its text applies, its count does not
    hook(event("e2b", "post.updated", {**post, "content": "please, dark mode", "voteCount": 5}, at="2026-01-02T12:00:00Z"))
    assert hook.integration.store.post("p1")["votes"] == 7 and "dark mode" in _text(hook, "p1")


def test_a_post_updated_at_orders_updates_before_the_events_own_time(hook):
    hook(event("e1", "post.created", {"id": "p1", "title": "A", "content": "new text",
                                       "updatedAt": "2026-01-05T00:00:00Z"}, at="2026-01-05T00:00:01Z"))
    hook(event("e2", "post.updated", {"id": "p1", "title": "A", "content": "old text",
                                       "updatedAt": "2026-01-04T00:00:00Z"}, at="2026-01-06T00:00:00Z"))
    assert _text(hook, "p1").endswith("new text")


def test_an_event_dated_far_ahead_does_not_freeze_the_post(hook):
    hook(event("e1", "post.created", {"id": "p1", "title": "A", "content": "first"}, at="9999-01-01T00:00:00Z"))
    hook(event("e2", "post.updated", {"id": "p1", "title": "A", "content": "second"}, at="2026-01-02T00:00:00Z"))
    assert _text(hook, "p1").endswith("second")  # a forged or skewed 9999 would have won every comparison
    hook(event("e3", "post.status_changed", {"id": "p1", "title": "A"}, at="9999-01-01T00:00:00Z", newStatus="planned"))
    hook(event("e4", "post.status_changed", {"id": "p1", "title": "A"}, at="2026-01-03T00:00:00Z", newStatus="done"))
    assert hook.integration.store.post("p1")["status"] == "done"


@pytest.mark.parametrize("when", ["not a time", "now", "today", None, 1767225600])
def test_events_without_a_usable_time_apply_in_arrival_order(hook, when):
    hook(event("e1", "post.created", {"id": "p1", "title": "A", "content": "first"}, at="2026-01-02T00:00:00Z"))
    hook(event("e2", "post.updated", {"id": "p1", "title": "A", "content": "second"}, at=when))
    assert _text(hook, "p1").endswith("second")
    # still dated by e1 ("now" was read as the moment of processing: any later retry lost to it)
    assert hook.integration.store.post("p1")["text_at"] == "2026-01-02T00:00:00Z"


def test_an_old_store_gains_the_new_date_columns(tmp_path):
    import sqlite3

    from feedback_nlp.integrations.quackback._store import IntegrationStore

    db = sqlite3.connect(tmp_path / "q.sqlite")
    db.execute("CREATE TABLE posts (id TEXT PRIMARY KEY, text TEXT, board TEXT, created_at TEXT, votes INTEGER, "
               "status TEXT, status_stage TEXT, status_changed_at TEXT, first_status_change_at TEXT, "
               "canonical_post_id TEXT, deleted INTEGER NOT NULL DEFAULT 0, predicted TEXT, written TEXT, "
               "sentiment TEXT, updated_at REAL)")
    db.execute("INSERT INTO posts (id, text) VALUES ('p1', 'kept')")
    db.commit()
    db.close()
    store = IntegrationStore(tmp_path / "q.sqlite")
    store.upsert_post("p1", votes=3, votes_at="2026-01-01T00:00:00Z")
    assert store.post("p1")["text"] == "kept" and store.post("p1")["votes_at"] == "2026-01-01T00:00:00Z"


# --- vendor exports read a chunk at a time -----------------------------------------------------------------

def _zendesk(path, n):
    tickets = [{"id": i, "subject": f"Export {i}", "description": "The CSV export cuts off long descriptions " * 3,
                "requester_id": 7, "organization_id": 9, "via": {"channel": "email"}, "custom_fields":
                [{"id": 5, "value": f"v{i}"}]} for i in range(n)]
    path.write_text(json.dumps({"tickets": tickets, "users": [{"id": 7, "name": "Ann"}], "count": n}))
    return path


def _intercom(path, n):
    conv = {"type": "conversation", "id": "c", "state": "open", "created_at": 1,
            "source": {"id": "s", "body": "<p>The CSV export cuts off long descriptions</p>" * 3,
                       "author": {"type": "user", "name": "Bo"}},
            "conversation_parts": {"conversation_parts": [
                {"id": "n", "part_type": "note", "body": "internal", "author": {"type": "admin"}}]}}
    path.write_text(json.dumps({"type": "conversation.list",
                                "conversations": [{**conv, "id": f"c{i}", "source": {**conv["source"], "id": f"s{i}"}}
                                                  for i in range(n)]}))
    return path


def _survey(path, n):
    rows = "".join(f"r{i},2026-01-0{1 + i % 9},{i % 10},The export to CSV cuts off long descriptions {i} times\n"
                   for i in range(n))
    path.write_text("Respondent ID,Submitted At,How likely (0-10)?,What should we improve?\n" + rows)
    return path


@pytest.mark.parametrize("make, fmt", [(_zendesk, "zendesk"), (_intercom, "intercom"), (_survey, "survey")])
def test_a_vendor_export_is_read_a_chunk_at_a_time(tmp_path, monkeypatch, make, fmt):
    import tracemalloc

    from feedback_nlp.connectors import survey
    from feedback_nlp.records import iter_table_chunks

    monkeypatch.setattr(survey, "SAMPLE_RESPONSES", 1_000)  # questions chosen on these, then a chunk at a time

    def peak(n):
        path = make(tmp_path / f"{fmt}{n}.{'csv' if fmt == 'survey' else 'json'}", n)
        tracemalloc.start()
        rows = sum(len(c) for c in iter_table_chunks(path, 500, format=fmt))
        high = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert rows == n
        return high

    small, large = peak(4_000), peak(16_000)
    assert large < 1.5 * small, (small, large)  # the whole export became one table: ~4x for 4x the tickets


def test_streamed_vendor_rows_and_skips_match_the_whole_read(tmp_path):
    from feedback_nlp.connectors import iter_export
    from feedback_nlp.connectors.intercom import read_intercom
    from feedback_nlp.connectors.zendesk import read_zendesk

    zd = _zendesk(tmp_path / "zd.json", 25)
    chunks = list(iter_export(zd, "zendesk", chunk_size=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    whole = read_zendesk(zd).frame
    assert pd.concat(chunks, ignore_index=True)[list(whole.columns)].equals(whole)
    ic = _intercom(tmp_path / "ic.json", 7)
    skipped = {}
    streamed = pd.concat(iter_export(ic, "intercom", chunk_size=3, skipped=skipped), ignore_index=True)
    export = read_intercom(ic)
    assert streamed["id"].tolist() == export.frame["id"].tolist() == [f"s{i}" for i in range(7)]
    assert skipped == export.skipped == {"internal note": 7}
    data = fb.read_feedback(ic, format="intercom")
    assert len(data.records) == 7 and data.skipped == {"internal note": 7}


def test_survey_questions_are_chosen_on_the_first_responses(tmp_path, monkeypatch):
    from feedback_nlp.connectors import survey

    rows = "".join(f"r{i},{i % 10},The export to CSV cuts off long descriptions {i} times,"
                   f"{'' if i < 10 else f'Comments arrive late in this survey as answer {i}'}\n" for i in range(50))
    path = write_file(tmp_path / "s.csv", "Respondent ID,Score,What should we improve?,Anything else?\n" + rows)
    monkeypatch.setattr(survey, "SAMPLE_RESPONSES", 10)
    export = survey.read_survey(path)  # chosen on 10 responses, read through all 50
    assert export.frame["source_detail"].unique().tolist() == ["What should we improve?"]
    assert export.frame["id"].tolist() == [f"r{i}-q3" for i in range(50)]
    # a question answered only after the sample must be named (the documented limit of reading in chunks)
    named = survey.read_survey(path, questions=["What should we improve?", "Anything else?"]).frame
    assert len(named) == 90


# --- more found by this round's audit -------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"\xef\xbb\xbf" + b'{"items": [{"id": "1", "text": "export fails", "text": "dark mode"}]}',  # a BOM first
    '{"items": [{"id": "1", "text": "export fails", "text": "dark mode"}]}'.encode("utf-16"),
    b'{"items": [{"id": "1", "text": "export fails", "\\u0074ext": "dark mode"}]}',  # an escaped spelling
])
def test_a_repeated_key_cannot_hide_behind_a_bom_utf16_or_an_escape(api, raw):
    r = post_json(api, "/v1/tag", raw)  # the BOM and UTF-16 bodies were tagged: FastAPI reads them, the check did not
    assert r.status_code == 422 and "the key 'text' is named twice" in r.json()["error"]["message"]


@pytest.mark.parametrize("name", ["o.json", "o.jsonl", "o.parquet", "o.csv"])
def test_a_frame_with_a_column_named_twice_is_refused_by_name(tmp_path, name):
    df = pd.DataFrame([["1", "a", "b"]], columns=["id", "text", "text"])
    with pytest.raises(InvalidInputError, match=r"column\(s\) \['text'\] appear twice"):
        write_table(df, tmp_path / name)  # was pandas' ValueError, pyarrow's error or an AttributeError (CSV)
    assert list(tmp_path.iterdir()) == []


_NFC, _NFD = "caf\u00e9", "cafe\u0301"


def test_tag_ids_that_differ_only_in_unicode_form_are_refused():
    assert _NFC != _NFD and unicodedata.normalize("NFC", _NFD) == _NFC
    with pytest.raises(fb.TaxonomyError, match="differ only in their Unicode form"):
        fb.Taxonomy([{"id": _NFC, "name": "Coffee"}, {"id": _NFD, "name": "Coffee too"}])


@pytest.mark.parametrize("taxonomy_form", [None, _NFD])
def test_training_labels_in_two_unicode_forms_are_one_tag(tmp_path, capsys, hashed_cli, taxonomy_form):
    labels = [_NFC, _NFD, "bug", "bug"] * 4
    rows = "".join(f"{i},{'coffee is cold' if 'caf' in lab else 'app crashes'} {i},{lab}\n" for i, lab in enumerate(labels))
    data = write_file(tmp_path / "l.csv", "id,text,label\n" + rows)
    extra = []
    if taxonomy_form:
        tax = fb.Taxonomy([{"id": taxonomy_form, "name": "Coffee"}, {"id": "bug", "name": "Bug"}]).save(tmp_path / "t.yaml")
        extra = ["--taxonomy", str(tax)]
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), "--holdout", "0", "--json", *extra]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["tags"] == 2  # was 3 ("café" twice), or an unknown-tag error naming "café"
    assert "differ from the same tag elsewhere only in their Unicode form" in out.err


def test_ctrl_c_while_outputs_are_renamed_into_place_leaves_the_whole_new_set(tmp_path, monkeypatch):
    import os
    import signal

    from feedback_nlp import _atomic

    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("old")
    real = _atomic._replace

    def interrupted(tmp, final):
        if final.name == "a.csv":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the first rename starts
        real(tmp, final)

    monkeypatch.setattr(_atomic, "_replace", interrupted)
    # (the deferred signal goes to the handler that was there: Python's own, which conftest.py makes sure of
    # even when the test run inherited SIGINT ignored)
    with pytest.raises(KeyboardInterrupt), _atomic.OutputSet() as outs:
        for name in ("a.csv", "b.csv"):
            outs.file(tmp_path / name).write_text("new")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # was a.csv new and b.csv old (its temp file removed): a set that never existed
    assert [(tmp_path / n).read_text() for n in ("a.csv", "b.csv")] == ["new", "new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_quackback_pull_refuses_an_unwritable_output_before_any_request(tmp_path, capsys, where):
    key = write_file(tmp_path / "key", "qb_secret")
    (tmp_path / "posts.csv").mkdir()
    (tmp_path / "file").write_text("x")
    out = tmp_path / ("posts.csv" if where == "folder" else "file/posts.csv")
    code = main(["quackback", "pull", "--url", "http://127.0.0.1:9", "--key-file", key, "--out", str(out)])
    err = capsys.readouterr().err
    # was a connection error here; with a reachable portal, the whole pull and then a failed write
    assert code != 0 and ("is a folder" in err or "not a folder" in err), err


def test_a_post_created_arriving_after_its_update_keeps_the_newer_text_and_gives_its_date(hook):
    hook(event("e2", "post.updated", {"id": "p1", "title": "A", "content": "edited"}, at="2026-01-02T00:00:00Z"))
    hook(event("e1", "post.created", {"id": "p1", "title": "A", "content": "first draft"}, at="2026-01-01T00:00:00Z"))
    post = hook.integration.store.post("p1")
    assert post["text"].endswith("edited") and post["created_at"] == "2026-01-01T00:00:00Z"


def test_a_training_label_holding_a_newline_or_tab_is_refused_like_a_taxonomy_id(tmp_path, capsys, hashed_cli):
    rows = "".join(f'{i},text {i},"{lab}"\n' for i, lab in enumerate(["bug\nfix", "feature", "a\tb", "feature"] * 3))
    data = write_file(tmp_path / "l.csv", "id,text,label\n" + rows)
    assert main(["train", "--data", data, "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err  # was a model with a tag "bug\nfix", which splits every line-based output
    assert "holds a control character" in err and "at lines 2, 5, 7, 10, 12, 15" in err  # a cell spans 2 lines


@pytest.mark.parametrize("name, errors", [(".json", ".errors.json"), ("run.v2.json", "run.v2.errors.json"),
                                          ("t.CSV.gz", "t.errors.CSV.gz"), ("tagged.parquet", "tagged.errors.parquet")])
def test_the_default_errors_file_keeps_the_outputs_format(model_dir, tmp_path, cache_path, name, errors):
    data = write_file(tmp_path / "in.csv", _BACKLOG)
    summary = fb.tag_file(model_dir, data, tmp_path / name, cache=cache_path, progress=False)
    # ".json" gave ".errors", a name with no format: the job ran every chunk, then failed to write it
    assert summary.errors == str(tmp_path / errors) and read_table(summary.errors)["id"].tolist() == ["2"]


def test_an_errors_path_with_no_format_is_refused_before_any_chunk(model_dir, tmp_path, cache_path):
    data = write_file(tmp_path / "in.csv", _BACKLOG)
    with pytest.raises(InvalidInputError, match="cannot tell the output format of '.*rejected.txt'"):
        fb.tag_file(model_dir, data, tmp_path / "t.csv", errors_path=tmp_path / "rejected.txt", cache=cache_path,
                    progress=False, chunk_hook=lambda i: (_ for _ in ()).throw(AssertionError("a chunk ran")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_values_json_and_parquet_have_no_type_for_are_written_as_text_or_refused_by_column(tmp_path):
    from fractions import Fraction

    df = pd.DataFrame({"theme": ["a", "b"], "share": [Fraction(1, 3), Fraction(2, 3)], "big": [10**30, 1]})
    for name in ("o.json", "o.jsonl"):  # was "Unable to serialize object to JSON"
        assert read_table(write_table(df, tmp_path / name))["share"].tolist() == ["1/3", "2/3"]
    with pytest.raises(InvalidInputError, match=r"column 'share' holds values Parquet cannot store \(Fraction"):
        write_table(df, tmp_path / "o.parquet")  # was pyarrow's ArrowInvalid
    with pytest.raises(InvalidInputError, match=r"column 'big' holds values Parquet cannot store \(int"):
        write_table(df.drop(columns="share"), tmp_path / "o.parquet")  # was an OverflowError
    assert not (tmp_path / "o.parquet").exists()


def test_an_output_that_is_a_symlink_is_replaced_not_written_through(tmp_path, hashed_cli):
    # a link planted in a shared folder (tagged.csv -> ~/.bashrc) must not make a run overwrite its target
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    (tmp_path / "s.csv").symlink_to(target)
    data = write_file(tmp_path / "in.csv", "id,text,theme\n1,Export fails,a\n")
    assert main(["score", "--in", data, "--out", str(tmp_path / "s.csv"), "--account-col", "", "--revenue-col", "",
                 "--time-col", ""]) == 0
    assert target.read_text() == "precious" and not (tmp_path / "s.csv").is_symlink()
    assert read_table(tmp_path / "s.csv")["theme"].tolist() == ["a"]


def test_quackback_pull_refuses_to_write_over_its_own_key_file(tmp_path, capsys):
    key = write_file(tmp_path / "qb.csv", "qb_secret")
    code = main(["quackback", "pull", "--url", "http://127.0.0.1:9", "--key-file", key, "--out", key])
    assert code == 2 and "is the --key-file" in capsys.readouterr().err  # the pull would have replaced the key
    assert (tmp_path / "qb.csv").read_text() == "qb_secret"
