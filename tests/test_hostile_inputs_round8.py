"""Odd input and careless use found in the eighth round; each test fails without its fix."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from feedback_nlp import Deduper
from feedback_nlp._lock import JobLock
from feedback_nlp.cli import main


def _opps(path):
    pd.DataFrame({"id": ["a", "b"], "reach": [100, 300], "impact": [2, 1], "confidence": [0.8, 0.5],
                  "effort": [2, 1]}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", ["score", "dedupe"])
def test_a_second_run_on_one_output_is_refused(tmp_path, capsys, hashed_cli, command):
    # two runs writing one output interleaved their renames (one run's themes.csv beside the other's
    # assignments.csv); tag was the only command that locked its output
    src = _opps(tmp_path / "in.csv")
    pd.read_csv(src).assign(text=["export fails", "login is slow"]).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    args = {"score": ["score", "--in", str(src), "--out", str(out), "--framework", "rice"],
            "dedupe": ["dedupe", "--in", str(src), "--out", str(out)]}[command]
    with JobLock(tmp_path / "out.csv.lock"):
        assert main(args) != 0
    err = capsys.readouterr().err
    assert f"another run is already writing {out}" in err and "then run again" in err and "--resume" not in err
    assert not out.exists()
    assert main(args) == 0  # released: the same command runs, and leaves no lock behind
    assert out.exists() and not (tmp_path / "out.csv.lock").exists()


def test_a_folder_output_is_locked_too(tmp_path, capsys, hashed_cli):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": range(30), "text": [f"export to csv fails {i % 3}" for i in range(30)]}).to_csv(src, index=False)
    with JobLock(tmp_path / "themes_out.lock"):
        assert main(["themes", "--in", str(src), "--out", str(tmp_path / "themes_out"), "--min-theme-size", "5"]) != 0
    assert "another run is already writing" in capsys.readouterr().err
    assert not (tmp_path / "themes_out").exists()


def test_the_lock_never_overwrites_an_input(tmp_path, capsys):
    # the lock file is written (its holder's pid): an input at <out>.lock would have been replaced by it
    src = _opps(tmp_path / "opps.csv.lock")
    before = src.read_bytes()
    assert main(["score", "--in", str(src), "--format", "csv", "--out", str(tmp_path / "opps.csv"),
                 "--framework", "rice"]) != 0
    err = capsys.readouterr().err
    assert "lock file" in err and "the --in file" in err
    assert src.read_bytes() == before


def test_dedupe_rerun_without_rejects_removes_the_old_errors_file(tmp_path, capsys, hashed_cli):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["export fails", "", "export is failing"]}).to_csv(src, index=False)
    out = tmp_path / "g.csv"
    assert main(["dedupe", "--in", str(src), "--out", str(out)]) == 0
    assert (tmp_path / "g.errors.csv").exists()
    pd.DataFrame({"id": ["a", "c"], "text": ["export fails", "export is failing"]}).to_csv(src, index=False)
    assert main(["dedupe", "--in", str(src), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "errors" not in summary["outputs"]
    assert not (tmp_path / "g.errors.csv").exists()  # it listed row b, which this run never saw


def test_dedupe_against_an_overlapping_backlog_does_not_match_an_item_with_itself(tmp_path, hashed_cli):
    backlog = tmp_path / "backlog.csv"
    pd.DataFrame({"id": ["1", "2", "3"], "text": ["export to csv fails", "dark mode please",
                                                  "export to csv is failing"]}).to_csv(backlog, index=False)
    new = tmp_path / "new.csv"  # this week's export repeats item 1 and brings item 9
    pd.DataFrame({"id": ["1", "9"], "text": ["export to csv fails", "dark mode please add it"]}).to_csv(new, index=False)
    out = tmp_path / "m.csv"
    assert main(["dedupe", "--in", str(new), "--against", str(backlog), "--out", str(out), "--k", "1",
                 "--threshold", "0.01"]) == 0
    m = pd.read_csv(out, dtype=str)
    assert not (m["query_id"] == m["match_id"]).any()
    assert m.set_index("query_id")["match_id"].to_dict() == {"1": "3", "9": "2"}


def test_scores_of_copies_never_exceed_one(hash_embedder):
    texts = ["export to csv fails"] * 3 + ["dark mode please", "the login page is slow"]
    d = Deduper(hash_embedder, threshold=0.5).fit(texts, ids=list(range(5)))
    found = d.find(texts[:1], k=3)
    assert found["score"].max() <= 1.0
    assert d.pairs()["score"].max() <= 1.0 and d.groups()["score"].max() <= 1.0
    assert np.all(d.score_pairs(texts, texts) <= 1.0)


@pytest.mark.parametrize("bad", [None, float("nan"), pd.NA])
def test_deduper_refuses_missing_ids_by_position(hash_embedder, bad):
    # a match with id None or NaN named no item (and NaN is unequal to itself: exclude_ids never found it)
    from feedback_nlp.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"ids are missing at positions \[1\]"):
        Deduper(hash_embedder).fit(["export fails", "dark mode", "slow login"], ids=["a", bad, "c"])
    d = Deduper(hash_embedder).fit(["export fails"], ids=["a"])
    with pytest.raises(InvalidInputError, match=r"positions \[0\]"):
        d.add(["dark mode"], ids=[bad])
    assert d.ids_ == ["a"]


@pytest.mark.parametrize("ids", [[pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-02")], [b"a", b"b"], [(1, 2), (3, 4)]])
def test_deduper_save_refuses_ids_that_would_load_as_other_ids(hash_embedder, tmp_path, ids):
    # saved as JSON with default=str: Timestamp ids came back as strings, tuples as lists, bytes as "b'a'"
    from feedback_nlp.errors import InvalidInputError

    d = Deduper(hash_embedder).fit(["export fails", "dark mode"], ids=ids)
    assert d.find(["export fails"], k=1)["id"].tolist() == [ids[0]]  # in memory they work
    with pytest.raises(InvalidInputError, match=f"is a {type(ids[0]).__name__}.*ids converted to str"):
        d.save(tmp_path / "d")
    assert not (tmp_path / "d").exists()
    d = Deduper(hash_embedder).fit(["export fails", "dark mode"], ids=[str(i) for i in ids])
    assert Deduper.load(d.save(tmp_path / "d"), embedder=hash_embedder).ids_ == [str(i) for i in ids]


def test_theme_keywords_of_non_english_items_leave_out_their_function_words():
    # scikit-learn's English list only: German and French themes were named "die, und, ich" / "le, est, pas"
    from feedback_nlp.themes import CTFIDFLabeller

    docs = {0: ["Die App stürzt beim Start ab und ich kann nicht arbeiten",
                "Nach dem Update stürzt die App beim Start immer ab",
                "Die App stürzt ab, wenn ich sie starte"],
            1: ["Le paiement ne passe pas avec ma carte",
                "Je ne peux pas payer avec la carte, le paiement échoue",
                "Paiement refusé pour la carte de crédit"],
            2: ["Export to CSV fails on long rows", "The CSV export fails again", "CSV export is broken"]}
    kw = CTFIDFLabeller(min_df=1).keywords(docs, 3)
    assert kw[0][:2] == ["app stürzt", "start"] or set(kw[0][:2]) <= {"app stürzt", "stürzt", "app", "start"}
    assert set(kw[1][:2]) <= {"paiement", "carte"}
    assert not {"die", "und", "ich", "beim"} & set(CTFIDFLabeller(min_df=1).keywords(docs, 10)[0])
    assert not {"le", "la", "ne", "pas", "avec"} & set(CTFIDFLabeller(min_df=1).keywords(docs, 10)[1])
    assert kw[2] == CTFIDFLabeller(min_df=1, stop_words="english").keywords(docs, 3)[2]  # English items as before
    with pytest.raises(ValueError, match="stop_words"):  # a language name was read as a set of letters
        CTFIDFLabeller(stop_words="german").keywords(docs, 3)


def test_an_english_item_keeps_words_that_are_function_words_elsewhere():
    from feedback_nlp.themes._stopwords import item_stop_words

    assert item_stop_words("My car app: the son of the owner says the map is wrong") == frozenset()
    assert "car" in item_stop_words("Je ne peux pas ouvrir l'app car elle plante")


def test_a_failed_run_into_new_folders_leaves_none_behind(tmp_path, capsys):
    # the lock file sits beside the output: its folders were created for it and left when the run failed
    src = tmp_path / "bad.csv"
    pd.DataFrame({"reach": [1], "impact": [1], "confidence": [0.5], "effort": [0]}).to_csv(src, index=False)
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "a" / "b" / "r.csv"), "--framework", "rice"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    _opps(src)
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "a" / "b" / "r.csv"), "--framework", "rice"]) == 0
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["r.csv"]


@pytest.mark.parametrize("item_id", [".", "..", "a/../b", "tickets/./7"])
def test_service_ids_with_dot_segments_are_refused(api, item_id):
    # stored, but GET /v1/backlog/a/../b reaches b: HTTP clients resolve dot segments before sending
    from _hostile_support import post_json

    r = post_json(api, "/v1/backlog", {"items": [{"id": item_id, "text": "export fails"}]})
    assert r.status_code == 422 and "path segment" in r.text


def test_a_backlog_item_is_fetched_and_deleted_by_its_id_in_either_unicode_form(api):
    import unicodedata

    from _hostile_support import post_json

    nfc, nfd = unicodedata.normalize("NFC", "café-r8"), unicodedata.normalize("NFD", "café-r8")
    assert post_json(api, "/v1/backlog", {"items": [{"id": nfd, "text": "export fails"}]}).status_code == 200
    got = api.get(f"/v1/backlog/{nfc}")
    assert got.status_code == 200 and got.json()["id"] == nfd  # as stored
    assert api.delete(f"/v1/backlog/{nfc}").status_code == 204
    assert api.get(f"/v1/backlog/{nfd}").status_code == 404


@pytest.mark.parametrize("given", ["w", "m", " q", "2m", "y"])
def test_trend_periods_are_read_in_either_case(tmp_path, hash_embedder, given):
    # "w" passed with pandas' deprecation warning and trended weekly; "m" was refused by the CLI (minutes to
    # pandas) and "q"/"y" too
    import argparse
    import warnings

    from feedback_nlp import ThemeModel
    from feedback_nlp.cli import period

    assert period(given) == given.strip().upper()
    texts = [f"export to csv fails {i % 3}" for i in range(12)] + [f"dark mode please {i % 3}" for i in range(12)]
    when = pd.date_range("2026-01-01", periods=24, freq="5D")
    tm = ThemeModel(hash_embedder, min_theme_size=3).fit(texts, timestamps=when)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(tm.trends(given), tm.trends(given.strip().upper()))
    with pytest.raises(argparse.ArgumentTypeError):
        period("x")


def test_an_id_cell_holding_a_placeholder_is_named_in_the_reason(tmp_path):
    # "NA", "null", "N/A" ids are no ids (records.PLACEHOLDERS); the bare "missing id" left a user looking at a
    # cell that holds something
    from feedback_nlp import read_feedback

    src = tmp_path / "ids.csv"
    src.write_text("id,text\nNA,export fails\nnull,dark mode\n,login is slow\n")
    reasons = read_feedback(src).rejected["reason"].tolist()
    assert reasons == ["missing id (the cell 'NA' is a placeholder for no value)",
                       "missing id (the cell 'null' is a placeholder for no value)", "missing id"]
    assert read_feedback(src, placeholders=()).records["id"].tolist() == ["NA", "null"]
