"""Hostile and merely unusual inputs, round 7: each test failed before its fix."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import event, make_hook, post_json, write_file
from conftest import HashEmbedder
from feedback_nlp._atomic import writable_target
from feedback_nlp.records import write_table

# --- Quackback: votes before their post, and two workers on one post --------------------------------------


@pytest.fixture
def hook(tmp_path):
    return make_hook(tmp_path)


def test_a_vote_delivered_before_its_post_is_kept_for_it(hook):
    hook(event("e1", "post.voted", {"id": "p1", "voteCount": 9}, at="2026-01-03T00:00:00Z"))
    result = hook.integration.store.event("e1")["result"]
    assert result["votes"] == 9 and "not known yet" in result["note"]  # was dropped without a word
    assert hook.integration.store.posts_frame().empty  # no text yet: not a live post for exports and the backlog
    hook(event("e0", "post.created", {"id": "p1", "title": "Dark mode", "content": "please", "voteCount": 0},
               at="2026-01-01T00:00:00Z"))  # the older post.created, retried, arrives last
    post = hook.integration.store.post("p1")
    assert post["votes"] == 9 and post["text"].startswith("Dark mode")  # the newer count stands
    assert hook.integration.store.posts_frame()["id"].tolist() == ["p1"]


class _GatedTagger:
    """Tags like FixedTagger, but holds a text containing ``hold`` until ``release`` is set (a slow model)."""

    def __init__(self) -> None:
        self.holding, self.release = threading.Event(), threading.Event()

    def predict(self, texts):
        from feedback_nlp.integrations.quackback._processor import Prediction

        if any("hold" in t for t in texts):
            self.holding.set()
            assert self.release.wait(10)
        return [Prediction({"bug": 0.9}) for _ in texts]


def _two_workers(hook, slow: dict, fast: dict) -> None:
    """Process ``slow`` in a thread whose tagging waits until ``fast`` was processed in this one (two workers
    on one post, the slow one checked the post's state before the fast one changed it)."""
    from feedback_nlp.integrations.quackback._events import parse_event

    processor = hook.integration.processor
    tagger = processor.tagger = _GatedTagger()
    worker = threading.Thread(target=processor.process, args=(parse_event(json.dumps(slow).encode()),))
    worker.start()
    assert tagger.holding.wait(10)
    processor.process(parse_event(json.dumps(fast).encode()))
    tagger.release.set()
    worker.join(10)


def test_an_older_update_tagged_while_a_newer_one_is_stored_does_not_replace_it(hook):
    post = {"id": "p1", "title": "Export"}
    _two_workers(hook, event("e1", "post.updated", {**post, "content": "hold: csv is slow"}, at="2026-01-02T00:00:00Z"),
                 event("e2", "post.updated", {**post, "content": "csv fails on long rows"}, at="2026-01-03T00:00:00Z"))
    assert "long rows" in hook.integration.store.post("p1")["text"]  # was "csv is slow": checked, then written


def test_a_post_deleted_while_its_creation_is_tagged_stays_deleted(hook):
    _two_workers(hook, event("e1", "post.created", {"id": "p1", "title": "Export", "content": "hold: csv fails"},
                             at="2026-01-01T00:00:00Z"),
                 event("e2", "post.deleted", {"id": "p1"}, at="2026-01-02T00:00:00Z"))
    assert hook.integration.store.post("p1")["deleted"] == 1  # was 0: the deletion was undone
    assert "p1" not in hook.backlog.items  # and the deleted post stayed searchable as a duplicate


# --- the HTTP service: one parse per body, a kept count -------------------------------------------------------


def test_a_request_body_is_parsed_once(api, monkeypatch):
    body = json.dumps({"items": [{"id": "1", "text": "export fails"}]}).encode()
    seen = []
    real = json.loads
    monkeypatch.setattr(json, "loads", lambda s, *a, **k: (seen.append(s == body), real(s, *a, **k))[1])
    r = post_json(api, "/v1/tag", body)
    assert r.status_code == 200 and r.json()["results"][0]["id"] == "1"
    assert seen.count(True) == 1  # was 2: the duplicate-key check, then FastAPI


def test_the_backlog_size_is_kept_not_counted_per_request(api):
    store = api.app.state.service.store
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        before = post_json(api, "/v1/backlog", {"items": [{"id": "r7-a", "text": "export fails"}]}).json()
        after = post_json(api, "/v1/backlog", {"items": [{"id": "r7-a", "text": "export still fails"},
                                                          {"id": "r7-b", "text": "dark mode please"}]}).json()
        assert api.delete("/v1/backlog/r7-a").status_code == 204
    finally:
        store._db.set_trace_callback(None)
    assert after == {"created": ["r7-b"], "updated": ["r7-a"], "backlog_size": before["backlog_size"] + 1}
    assert not [s for s in statements if "COUNT(" in s.upper()]  # was SELECT COUNT(*) FROM items per call
    counted = store._db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    assert store.count() == before["backlog_size"] == counted  # after the delete
    assert type(store)(store.folder).count() == counted  # counted afresh when a store opens


# --- quackback pull: a tag name holding '|' ------------------------------------------------------------------


def test_a_csv_pull_refuses_a_tag_name_holding_the_separator_before_reading_posts(tmp_path, capsys):
    from _fake_quackback import API_KEY, FakeQuackback
    from feedback_nlp.cli import main

    key = write_file(tmp_path / "key", API_KEY)
    with FakeQuackback() as qb:
        qb.add_post("Export fails", "csv", tags=("bug|export",))
        code = main(["quackback", "pull", "--url", qb.url, "--key-file", key, "--out", str(tmp_path / "p.csv")])
        err = capsys.readouterr().err
        assert code == 2 and "'bug|export'" in err and ".jsonl" in err, err
        assert not [r for r in qb.received if r.path.endswith("/posts")]  # was the whole pull, then the write failed
        assert main(["quackback", "pull", "--url", qb.url, "--key-file", key, "--out", str(tmp_path / "p.jsonl")]) == 0
    assert not (tmp_path / "p.csv").exists()
    assert json.loads((tmp_path / "p.jsonl").read_text())["tags"] == ["bug|export"]


# --- Slack exports in bounded memory --------------------------------------------------------------------------


def _slack_export(folder, days: int, per_day: int):
    folder.mkdir()
    (folder / "channels.json").write_text(json.dumps([{"id": "C1", "name": "feedback"}]))
    (folder / "users.json").write_text(json.dumps([{"id": "U1", "name": "ann"}]))
    (folder / "feedback").mkdir()
    for d in range(days):
        messages = [{"type": "message", "ts": f"{1767225600 + d * 100 + i}.000100", "user": "U1",
                     "text": f"export fails on day {d}, report {i}"} for i in range(per_day)]
        (folder / "feedback" / f"2026-01-{d + 1:02d}.json").write_text(json.dumps(messages))
    return folder


def test_a_slack_export_is_read_a_day_file_at_a_time(tmp_path, monkeypatch):
    from feedback_nlp.connectors import slack
    from feedback_nlp.records import iter_table_chunks

    export = _slack_export(tmp_path / "export", days=30, per_day=10)
    reads = []
    real = slack._Tree.read
    monkeypatch.setattr(slack._Tree, "read", lambda self, name: (reads.append(name), real(self, name))[1])
    chunks = iter_table_chunks(export, 10, format="slack")
    first = next(chunks)
    assert len(first) == 10 and first["id"].iloc[0] == "C1-1767225600.000100"
    assert len([n for n in reads if n.startswith("feedback/")]) <= 2  # was all 30 before the first chunk
    rest = list(chunks)
    assert sum(map(len, rest)) == 290 and len(reads) == 30 + 5  # each day file once, and the 5 listings
    whole = slack.read_slack(export).frame
    assert whole["id"].tolist() == [i for c in [first, *rest] for i in c["id"]]  # the same rows, in order


# --- ingest: ids, joined files, dates --------------------------------------------------------------------------


@pytest.mark.parametrize("raw_id, char", [
    ("\u202eabc", "U+202E"),  # a right-to-left override: shows as "cba"
    ("ab\u200bc", "U+200B"),  # a zero-width space: shows as "abc", is not "abc"
    ('"a\nb"', "U+000A"),  # a newline inside a quoted id
    ("x\u2066y", "U+2066"),
])
def test_an_id_holding_an_invisible_or_control_character_is_rejected_not_kept(tmp_path, raw_id, char):
    data = write_file(tmp_path / "in.csv", f"id,text\n{raw_id},export fails\nabc,dark mode\n")
    fb_data = fb.read_feedback(data)
    assert fb_data.records["id"].tolist() == ["abc"]  # was kept as an id that reads as another one
    assert char in fb_data.rejected["reason"].iloc[0] and fb_data.rejected["row"].iloc[0] == 2


def test_an_emoji_id_keeps_its_zero_width_joiner():
    family = "\U0001F468\u200d\U0001F469"
    assert fb.read_feedback(pd.DataFrame({"id": [family], "text": ["export fails"]})).records["id"].tolist() == [family]


def test_a_repeated_header_line_with_a_byte_order_mark_is_rejected_as_a_header(tmp_path):
    # `cat a.csv b.csv`, b.csv saved by Excel: its byte-order mark starts the second header line
    data = write_file(tmp_path / "joined.csv", b"id,text\n1,export fails\n\xef\xbb\xbfid,text\n2,dark mode\n")
    got = fb.read_feedback(data)
    assert got.records["id"].tolist() == ["1", "2"]  # was an item "\ufeffid" with the text "text"
    assert got.rejected["reason"].tolist() == ["the header line repeated (files joined together?)"]


def test_numeric_dates_are_read_in_one_order_per_separator(tmp_path):
    data = write_file(tmp_path / "d.csv", "id,text,created_at\n1,a b,01/02/2026\n2,c d,13/01/2026\n"
                                          "3,e f,01.02.2026\n4,g h,31.12.2026 10:00\n5,i j,12.31.2026\n")
    got = fb.read_feedback(data)
    dates = dict(zip(got.records["id"], got.records["created_at"].dt.strftime("%Y-%m-%d %H:%M")))
    assert dates == {"1": "2026-01-02 00:00", "3": "2026-02-01 00:00", "4": "2026-12-31 10:00"}  # 3 was 2 January
    reasons = dict(zip(got.rejected["id"], got.rejected["reason"]))
    assert set(reasons) == {"2", "5"}  # 2 was read day first, unlike its neighbour 1, without a word
    assert "is not a month/day/year date" in reasons["2"] and "is not a day.month.year date" in reasons["5"]


def test_a_day_first_file_is_read_with_feedback_nlp_date_order(tmp_path, monkeypatch):
    # a UK export: month-first reading rejects 25/03 (naming the way out) and reads 05/03 as 3 May
    data = write_file(tmp_path / "uk.csv", "id,text,created_at\n1,a b,25/03/2026\n2,c d,05/03/2026 09:30\n"
                                           "3,e f,05.03.2026\n")
    got = fb.read_feedback(data)
    assert list(got.rejected["id"]) == ["1"] and "FEEDBACK_NLP_DATE_ORDER=dmy" in got.rejected["reason"].iloc[0]
    monkeypatch.setenv("FEEDBACK_NLP_DATE_ORDER", "dmy")
    got = fb.read_feedback(data)
    dates = dict(zip(got.records["id"], got.records["created_at"].dt.strftime("%Y-%m-%d %H:%M")))
    assert dates == {"1": "2026-03-25 00:00", "2": "2026-03-05 09:30", "3": "2026-03-05 00:00"}
    assert got.rejected.empty
    us = write_file(tmp_path / "us.csv", "id,text,created_at\n1,a b,03/25/2026\n")
    got = fb.read_feedback(us)  # under dmy a month-first date is refused, and the reason names mdy
    assert "FEEDBACK_NLP_DATE_ORDER=mdy" in got.rejected["reason"].iloc[0]
    times, bad = fb.records.to_utc_times(pd.Series(["05/03/2026"]))  # scoring, themes and the report agree
    assert times.dt.month.tolist() == [3] and not bad.any()


def test_a_bad_date_order_setting_stops_the_run_not_each_row(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDBACK_NLP_DATE_ORDER", "ymd")
    data = write_file(tmp_path / "d.csv", "id,text,created_at\n1,a b,05/03/2026\n")
    with pytest.raises(fb.errors.InvalidInputError, match="FEEDBACK_NLP_DATE_ORDER"):
        fb.read_feedback(data)


# --- outputs ------------------------------------------------------------------------------------------------------


def test_a_tag_output_inside_the_saved_model_folder_is_refused_before_any_work(tmp_path, capsys):
    from feedback_nlp.cli import main

    model = fb.TagClassifier(HashEmbedder()).fit(["export fails", "dark mode please"] * 3, ["bug", "feature"] * 3)
    folder = model.save(tmp_path / "m")
    data = write_file(tmp_path / "in.csv", "id,text\n1,export fails\n")
    code = main(["tag", "--model", str(folder), "--in", data, "--out", str(folder / "tagged.csv")])
    assert code == 1 and "inside the saved feedback_nlp folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (tmp_path / "m").iterdir())
    fb.TagClassifier.load(folder, embedder=HashEmbedder())  # was "tagged.csv is not covered by manifest.json"
    # another tool's manifest.json (a web app's) says nothing about a folder
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "manifest.json").write_text('{"name": "my app"}')
    writable_target(tmp_path / "app" / "out.csv")


def test_a_full_disk_names_the_output_it_was_writing(tmp_path, monkeypatch):
    import errno

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(OSError, match="No space left on device") as caught:
        write_table(pd.DataFrame({"id": ["1"]}), tmp_path / "out.csv")
    assert caught.value.filename == str(tmp_path / "out.csv")  # was None: the CLI said only "No space left"
    assert list(tmp_path.iterdir()) == []


# --- ids in another Unicode form, and the service's other ids, numbers and bodies ----------------------------------

_NFC, _NFD = "caf\u00e9", "cafe\u0301"


def test_ids_differing_only_in_unicode_form_are_one_id_in_a_file(tmp_path):
    got = fb.read_feedback(write_file(tmp_path / "in.csv", f"id,text\n{_NFC},export fails\n{_NFD},dark mode\n"))
    assert got.records["id"].tolist() == [_NFC]  # was two rows whose ids print the same
    assert got.rejected["reason"].tolist() == [f"duplicate id: {_NFC!r} in another Unicode form (composed vs "
                                               "decomposed accents)"]


def test_ids_differing_only_in_unicode_form_are_one_id_in_a_request(api):
    r = post_json(api, "/v1/backlog", {"items": [{"id": _NFC, "text": "export fails"}, {"id": _NFD, "text": "dark"}]})
    assert r.status_code == 422 and "another Unicode form" in r.json()["error"]["message"]  # both were created


@pytest.mark.parametrize("item_id, message", [
    ("a\u200bb", "U+200B"),  # was stored: shows as "ab"
    ("\ufeff17", "U+FEFF"),
    ("  x  ", "white space"),  # a file's "  x  " is the id "x": the same item would have two ids
])
def test_service_ids_follow_the_files_rules(api, item_id, message):
    r = post_json(api, "/v1/backlog", {"items": [{"id": item_id, "text": "export fails"}]})
    assert r.status_code == 422 and message in r.json()["error"]["message"], r.text


def test_k_true_is_not_read_as_one(api):
    r = post_json(api, "/v1/duplicates", {"k": True, "items": [{"id": "1", "text": "export fails"}]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == "body.k"  # was 200 with k=1


def test_a_json_body_that_is_not_utf8_says_so(api):
    body = '{"items": [{"id": "1", "text": "caf\u00e9 export"}]}'.encode("latin-1")
    r = api.post("/v1/tag", content=body, headers={"content-type": "application/json; charset=latin-1"})
    assert r.status_code == 422 and "not UTF-8" in r.json()["error"]["message"]  # was 400 "error parsing the body"


def test_a_demand_score_whose_revenue_overflows_is_refused_not_null(api):
    items = [{"id": str(i), "theme": "a", "account_id": str(i), "account_revenue": 1e308} for i in range(2)]
    r = post_json(api, "/v1/score/demand", {"items": items})
    assert r.status_code == 422 and "beyond a float's range" in r.json()["error"]["message"]  # was 200, priority null


# --- demand scores: empty cells, dates in two orders, undated items ---------------------------------------------


def test_demand_scores_read_empty_cells_as_missing_and_dates_by_the_records_rules():
    df = pd.DataFrame({"theme": ["x", "x", "y", "y"], "account_id": ["a", "b", "a", "c"],
                       "account_revenue": ["10", "", "5", " "],  # a CSV's empty cells: were "non-numeric"
                       "created_at": ["01/02/2026", "", "2026-01-03", "13/01/2026"]})
    with pytest.raises(fb.InvalidInputError, match="unparseable dates in rows \\[3\\]"):
        fb.theme_scores(df, now="2026-01-20")  # 13/01/2026 was read day first beside month-first 01/02/2026
    out = fb.theme_scores(df.drop(index=3), now="2026-01-20").set_index("theme")
    assert out.loc["x", "revenue"] == 10.0 and out.loc["x", "accounts_without_revenue"] == 1
    assert str(out.loc["x", "first_seen"].date()) == "2026-01-02"


def test_a_demand_request_with_some_undated_items_keeps_the_dates_it_has(api):
    items = [{"id": "1", "theme": "a", "created_at": "2026-01-01T00:00:00Z"}, {"id": "2", "theme": "a"},
             {"id": "3", "theme": "b", "created_at": "2025-06-01T00:00:00Z"}]
    r = post_json(api, "/v1/score/demand", {"items": items, "now": "2026-01-10T00:00:00Z", "window": "30D"})
    growth = {row["theme"]: row["growth"] for row in r.json()["results"]}
    assert r.status_code == 200 and growth["a"] > growth["b"], r.text  # were both 0: every date was dropped


# --- Quackback: key files and URLs -----------------------------------------------------------------------------


def test_a_key_file_of_several_lines_is_refused_not_read_as_its_first(tmp_path):
    from feedback_nlp.integrations.quackback._errors import QuackbackError
    from feedback_nlp.integrations.quackback._secrets import read_secret

    env = write_file(tmp_path / ".env", "DB_PASSWORD=hunter2\nQUACKBACK_KEY=qb_abc\n")
    with pytest.raises(QuackbackError, match="holds 2 lines"):
        read_secret(env, what="API key")  # was Secret("DB_PASSWORD=hunter2"), sent to the portal as the key
    assert read_secret(write_file(tmp_path / "key", "\n  qb_abc  \n\n")).reveal() == "qb_abc"


@pytest.mark.parametrize("url, message", [
    ("https://feedback.acme.com\r\nX-Evil: 1", "control character"),
    ("https://user:pw@feedback.acme.com", "user name or password"),
])
def test_a_quackback_url_with_credentials_or_control_characters_is_refused(url, message):
    from feedback_nlp.integrations.quackback._client import QuackbackClient
    from feedback_nlp.integrations.quackback._errors import QuackbackError
    from feedback_nlp.integrations.quackback._secrets import Secret

    with pytest.raises(QuackbackError, match=message):  # both were looked up as a host name
        QuackbackClient(url, Secret("qb_abc"))


def test_themes_and_scoring_read_times_by_the_records_rules(hash_embedder):
    texts = [f"export fails {i % 3}" for i in range(12)]
    with pytest.raises(fb.InvalidInputError, match="timestamps do not parse at positions \\[11\\]"):
        fb.ThemeModel(hash_embedder, min_theme_size=2).fit(texts, timestamps=["01/02/2026"] * 11 + ["13/01/2026"])
    with pytest.raises(fb.InvalidInputError, match="now must be a time"):  # both were read day first, silently
        fb.theme_scores(pd.DataFrame({"theme": ["a"], "created_at": ["2026-01-01"]}), account_col=None,
                        revenue_col=None, now="13/01/2026")


def test_blank_texts_are_refused_by_dedupe_and_themes_whatever_the_embedder_accepts(hash_embedder):
    texts = [f"export fails {i % 3}" for i in range(12)]
    dedupe = fb.Deduper(hash_embedder).fit(pd.DataFrame({"id": [str(i) for i in range(12)], "text": texts}))
    with pytest.raises(fb.InvalidInputError, match="empty text at positions \\[0\\]"):
        dedupe.find("   ", k=3)  # was three "matches" of nothing, at score 0
    themes = fb.ThemeModel(hash_embedder, min_theme_size=2).fit(texts)
    with pytest.raises(fb.InvalidInputError, match="empty text at positions \\[1\\]"):
        themes.transform(["export fails", ""])  # was assigned a theme


def test_an_id_stored_in_another_unicode_form_is_not_stored_twice(api):
    assert post_json(api, "/v1/backlog", {"items": [{"id": "r7-" + _NFC, "text": "export fails"}]}).status_code == 200
    r = post_json(api, "/v1/backlog", {"items": [{"id": "r7-" + _NFD, "text": "dark mode"}]})
    assert r.status_code == 422 and repr("r7-" + _NFC) in r.json()["error"]["message"]  # was a second item
    assert post_json(api, "/v1/backlog", {"items": [{"id": "r7-" + _NFC, "text": "export fails"}]}).status_code == 200


# --- ingest: empty files, typed ids, vertical tabs, headers --------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.parquet", "empty.json", "blank.jsonl"])
def test_a_file_without_rows_reads_as_no_rows_not_a_pandas_error(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        pd.DataFrame({"id": pd.Series([], dtype=str), "text": pd.Series([], dtype=str)}).to_parquet(path)
    else:
        path.write_text("[]" if name.endswith(".json") else "\n  \n\n")
    got = fb.read_feedback(path)  # was ValueError: No objects to concatenate
    assert len(got.records) == 0 and len(got.rejected) == 0


def test_typed_ids_are_read_as_written_or_rejected_by_type(tmp_path):
    from decimal import Decimal

    got = fb.read_feedback(pd.DataFrame({"id": [Decimal("12.50"), Decimal("NaN"), pd.Timestamp("2026-01-01")],
                                         "text": ["export fails", "dark mode", "login loops"]}))
    assert got.records["id"].tolist() == ["12.50"]  # was "missing id"
    assert got.rejected["reason"].tolist() == ["missing id", "id is a Timestamp ('2026-01-01 00:00:00'), not a text "
                                               "or a number"]  # was "missing id": the column was there


def test_a_vertical_tab_line_break_is_text_not_binary(tmp_path):
    # FileMaker and Excel for Mac write \x0b for a line break inside a cell
    got = fb.read_feedback(write_file(tmp_path / "in.csv", 'id,text\n1,"dark\x0bmode"\n2,a\x1cb c\n3,"\x01\x02x"\n'))
    assert got.records["text"].tolist() == ["dark mode", "a b c"]  # were "binary or non-text content"
    assert got.rejected["reason"].tolist() == ["binary or non-text content"]


def test_a_repeated_header_in_capitals_is_a_header_and_a_full_width_column_is_pointed_out(tmp_path):
    got = fb.read_feedback(write_file(tmp_path / "in.csv", "id,text\nID,TEXT\n1,export fails\n"))
    assert got.records["id"].tolist() == ["1"] and got.rejected["row"].tolist() == [2]  # was an item "ID"
    with pytest.raises(fb.ColumnError, match="'ｔｅｘｔ' differs only in character width"):
        fb.read_feedback(write_file(tmp_path / "wide.csv", "ｉｄ,ｔｅｘｔ\n1,export fails\n"))


def test_a_full_or_read_only_cache_does_not_stop_the_embedding(tmp_path, monkeypatch, caplog):
    import sqlite3

    from feedback_nlp.cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "c.sqlite")

    class Full:
        in_transaction = False

        def execute(self, sql, *args):
            if sql.startswith("INSERT") or sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")

        def executemany(self, sql, rows):
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(cache, "_conn", lambda: Full())
    cache.put("m@1", ["export fails", "dark mode"], np.ones((2, 4), dtype=np.float32))  # was a CacheError
    assert cache.unwritable == 2 and "going on without caching them" in caplog.text
