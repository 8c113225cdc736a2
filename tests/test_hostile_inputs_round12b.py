"""Hostile and careless inputs, round 12b: the HTTP service as apps and an attacker on the network call it.
Each test failed before its fix. Everything runs in process (the tests' HashEmbedder, no model, no network).
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from _hostile_support import post_json
from feedback_nlp.cli import main
from feedback_nlp.errors import IntegrityError
from feedback_nlp.scoring import theme_scores

pytest.importorskip("fastapi")
_NFC, _NFD = "caf\u00e9", "cafe\u0301"


def _state(api):
    return api.app.state.service


# --- duplicates ----------------------------------------------------------------------------------------------


def test_an_item_is_never_its_own_duplicate_whichever_unicode_form_it_is_asked_in(api):
    r = post_json(api, "/v1/backlog", {"items": [{"id": _NFC, "text": "the csv export of reports fails"}]})
    assert r.status_code == 200, r.text
    r = post_json(api, "/v1/duplicates", {"items": [{"id": _NFD, "text": "the csv export of reports fails"}], "k": 5})
    assert r.status_code == 200, r.text
    matches = [m["id"] for m in r.json()["results"][0]["matches"]]
    assert _NFC not in matches  # was its own match, score 1.0, "duplicate": true


@pytest.mark.parametrize("raw, kind", [
    (b'{"items": [{"text": "export fails"}], "min_score": true}', "float_type"),  # was read as 1.0
    (b'{"items": [{"text": "export fails"}], "min_score": "0.5"}', "float_type"),  # was read as 0.5
    (b'{"items": [{"text": "export fails"}], "min_score": NaN}', "finite_number"),  # was "less than or equal to 1"
])
def test_a_min_score_of_true_a_string_or_nan_is_refused_by_name(api, raw, kind):
    r = post_json(api, "/v1/duplicates", raw)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0] == {"loc": "body.min_score", "msg": r.json()["error"]["details"][0]["msg"],
                                               "type": kind}
    assert post_json(api, "/v1/duplicates", {"items": [{"text": "export fails"}], "min_score": 1}).status_code == 200


# --- the body parser -----------------------------------------------------------------------------------------


def test_an_integer_too_long_to_read_is_a_named_422_not_a_bare_400(api):
    raw = b'{"items": [{"id": "a", "reach": 1' + b"0" * 5000 + b', "impact": 1, "confidence": 1, "effort": 1}]}'
    r = post_json(api, "/v1/score/rice", raw)
    assert r.status_code == 422, r.text  # was 400 http_error "There was an error parsing the body"
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and err["details"][0]["type"] == "number_too_long"
    assert "4300 digits" in err["message"]


# --- the store -----------------------------------------------------------------------------------------------


def test_a_store_locked_by_another_process_is_503_store_busy_and_nothing_is_written(api):
    store = _state(api).store
    store._db.execute("PRAGMA busy_timeout=50")  # the service waits 10 s; the test need not
    other = sqlite3.connect(store.folder / "backlog.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # an operator's sqlite3 shell holding a transaction
        r = post_json(api, "/v1/backlog", {"items": [{"id": "locked-1", "text": "dark mode please"}]})
        assert r.status_code == 503, r.text  # was 500 internal_error "unexpected error"
        assert r.json()["error"]["code"] == "store_busy" and r.headers["retry-after"] == "5"
        assert str(store.folder) not in r.text
        assert api.delete("/v1/backlog/locked-1").status_code in (404, 503)
    finally:
        other.execute("ROLLBACK")
        other.close()
        store._db.execute("PRAGMA busy_timeout=10000")
    assert api.get("/v1/backlog/locked-1").status_code == 404
    assert post_json(api, "/v1/backlog", {"items": [{"id": "locked-1", "text": "dark mode"}]}).status_code == 200


def test_a_damaged_store_file_is_named_and_leaves_the_folder_unlocked(tmp_path, capsys):
    from feedback_nlp.service import open_store

    data = tmp_path / "data"
    data.mkdir()
    (data / "backlog.sqlite").write_bytes(b"not a database, a copy went wrong" * 200)
    assert main(["keys", "list", "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "backlog.sqlite is not a readable SQLite store" in err and "unexpected" not in err  # was "unexpected
    with pytest.raises(IntegrityError, match="move it aside"):                                  # DatabaseError"
        open_store(data, lock=True)
    (data / "backlog.sqlite").unlink()
    open_store(data, lock=True).close()  # the failed open gave the instance lock back


# --- scores --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, items", [
    ("/v1/score/demand", [{"id": "a", "theme": "sso"}, {"id": "a", "theme": "sso"}, {"id": "b", "theme": "csv"}]),
    ("/v1/score/demand", [{"id": _NFC, "theme": "sso"}, {"id": _NFD, "theme": "sso"}]),
    ("/v1/score/moscow", [{"id": "a", "score": 9}, {"id": "a", "score": 9}, {"id": "b", "score": 1}]),
])
def test_an_item_sent_twice_in_a_demand_or_moscow_request_is_refused(api, path, items):
    r = post_json(api, path, {"items": items})
    assert r.status_code == 422, r.text  # demand counted it twice in its theme's volume; moscow moved the ranks
    assert r.json()["error"]["code"] == "duplicate_id" and r.json()["error"]["details"][0]["loc"] == "body.items[1].id"


def test_demand_weights_near_the_float_limit_rank_themes_instead_of_null_priorities(api):
    frame = pd.DataFrame({"theme": ["x", "y", "y"], "account_id": ["1", "1", "2"]})
    for weights in ({"volume": 1.7e308, "unique_accounts": 1.7e308}, {"volume": 1.7e308, "unique_accounts": 1e-300}):
        got = theme_scores(frame, time_col=None, revenue_col=None, weights=weights)
        assert got[["theme", "priority"]].values.tolist() == [["y", 100.0], ["x", 50.0]]  # was NaN / inf
    items = [{"id": "a", "theme": "x", "account_id": "1"}, {"id": "b", "theme": "y", "account_id": "1"},
             {"id": "c", "theme": "y", "account_id": "2"}]
    r = post_json(api, "/v1/score/demand", {"items": items, "weights": {"volume": 1.7e308, "unique_accounts": 1.7e308}})
    assert r.status_code == 200 and [row["priority"] for row in r.json()["results"]] == [100.0, 50.0]  # was null


def test_demand_says_how_many_items_it_left_without_a_theme(api):
    items = [{"id": "a", "theme": "sso"}, {"id": "b", "theme": ""}, {"id": "c", "theme": "outlier"}]
    r = post_json(api, "/v1/score/demand", {"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [row["theme"] for row in body["results"]] == ["sso"]
    assert body["items_without_theme"] == 2  # two items vanished without a word
    schema = api.get("/openapi.json").json()["components"]["schemas"]["DemandResponse"]
    assert "items_without_theme" in schema["properties"]


# --- cleaning, which every text sent to the service goes through ---------------------------------------------


@pytest.mark.parametrize("unit", ['<div a="', "<a href='", "<p a='>' b=\"", "<!--", "<div>" + "<!--", "<?", "</"])
def test_unclosed_tags_quotes_and_comments_are_cleaned_in_linear_time(api, unit):
    import time

    import feedback_nlp as fb

    text = (unit * (60_000 // len(unit) + 1))[:60_000]
    start = time.monotonic()
    fb.clean_text(text)  # '<div a="' 3,000 times (24 KB) took 5 s, 60 KB half a minute: quadratic in html.parser
    r = post_json(api, "/v1/tag", {"items": [{"id": "h", "text": text}]})  # on the service's one worker thread
    assert time.monotonic() - start < 10
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_text"  # too long once cleaned


@pytest.mark.parametrize("html, text", [
    ("<p>if a<b then</p><p>c</p>", "if a<b then c"),  # an unclosed "<" is text (was "if a c")
    ("<p a='1'b='2'>q</p>", "q"),
    ('<p a="x<y">z</p>', "z"),
    ("<p>Hi</p><!--[if mso]><table><tr><td><![endif]--><p>Export broken</p>", "Hi Export broken"),
    ("<div>a</div><!-- a --> b <!-- c", "a b <!-- c"),
])
def test_html_is_flattened_as_before_and_stray_angle_brackets_are_kept(html, text):
    import feedback_nlp as fb

    assert fb.clean_text(html) == text


@pytest.mark.parametrize("value, kind", [({"b": 1}, "an object"), ([1, 2], "a list")])
def test_nested_metadata_is_refused_once_by_name(api, value, kind):
    r = post_json(api, "/v1/backlog", {"items": [{"id": "nested", "text": "export fails", "metadata": {"a": value}}]})
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    # was four details, "metadata.a.str: Input should be a valid string", then .bool, .int, .float
    assert len(details) == 1 and details[0]["loc"] == "body.items[0].metadata" and kind in details[0]["msg"]


def test_loading_the_saved_index_prints_nothing_and_finds_what_was_saved(tmp_path, capfd):
    import numpy as np

    from feedback_nlp.service._index import AnnIndex

    vectors = np.eye(4, dtype=np.float32)
    index = AnnIndex.build(4, [(np.arange(4, dtype=np.int64), vectors)])
    index.save(tmp_path / "backlog.hnsw", seq=7)
    capfd.readouterr()
    loaded = AnnIndex.load(tmp_path / "backlog.hnsw", 7, 4, range(4))
    assert loaded is not None and loaded.search(vectors[2:3], 1)[0][0][0] == 2
    printed = capfd.readouterr()
    assert "Warning" not in printed.out + printed.err  # hnswlib's "Calling load_index for an already inited index"


@pytest.mark.parametrize("raw, loc", [
    (b'{"items": [{"id": "a", "theme": "\\ud800"}]}', "body.items[0].theme"),
    (b'{"items": [{"id": "a", "theme": "x", "account_id": "\\udc00"}]}', "body.items[0].account_id"),
    (b'{"items": [{"id": "a", "theme": "x", "created_at": "2026-01-01\\ud800"}]}', "body.items[0].created_at"),
    (b'{"items": [{"id": "a", "theme": "x", "created_at": "2026-01-01"}], "now": "2\\ud800"}', "body.now"),
])
def test_a_lone_surrogate_in_a_demand_request_is_a_422_naming_the_field(api, raw, loc):
    r = post_json(api, "/v1/score/demand", raw)
    assert r.status_code == 422, r.text  # was 500 internal_error (pandas' Arrow strings cannot hold one)
    assert r.json()["error"]["details"][0]["loc"] == loc and "surrogate" in r.json()["error"]["message"]


# --- metrics -------------------------------------------------------------------------------------------------


def test_made_up_http_methods_share_one_metrics_label(api):
    for i in range(5):
        assert api.request(f"ZZMETHOD{i}", "/healthz").status_code == 405
    scrape = api.get("/metrics").text
    assert "ZZMETHOD" not in scrape  # was one series per made-up method, without a key: memory without bound
    assert 'method="other",route="/healthz",status="405"} 5.0' in scrape
