"""Hostile and merely unusual inputs found by the fifth audit round: each test failed before its fix."""

import json
import re

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from conftest import HashEmbedder
from feedback_nlp import EncodingError, InvalidInputError
from feedback_nlp.cli import main

# --- encodings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["t.csv", "t.jsonl"])
def test_utf16_declared_for_a_file_without_a_byte_order_mark_is_an_encoding_error(tmp_path, name):
    path = tmp_path / name
    body = b"id,text\n1,export fails\n" if name.endswith(".csv") else b'{"id": "1", "text": "export fails"}\n'
    path.write_bytes(body)  # UTF-8: the utf-16 codec wants a BOM and raised a bare UnicodeError
    with pytest.raises(EncodingError, match="not valid utf-16.*utf-16-le or utf-16-be"):
        fb.read_feedback(path, encoding="utf-16")


def test_utf16_declared_in_the_cli_is_one_line_not_an_unexpected_error(tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,text\n1,export fails\n")
    code = main(["dedupe", "--in", str(path), "--out", str(tmp_path / "d.csv"), "--encoding", "utf-16"])
    err = capsys.readouterr().err
    assert code == 1 and "not valid utf-16" in err and "unexpected" not in err


# --- texts beside precomputed embeddings ------------------------------------------------------------

_X = np.random.default_rng(0).random((30, 8)).astype(np.float32)
_TEXTS = [f"w{i % 5} word{i % 3} export" for i in range(30)]


@pytest.mark.parametrize("call", [
    lambda: fb.ThemeModel(min_theme_size=2).fit([None, *_TEXTS[1:]], embeddings=_X),
    lambda: fb.ThemeModel(min_theme_size=2).fit([5, *_TEXTS[1:]], embeddings=_X),
    lambda: fb.ThemeModel(min_theme_size=2).fit(_TEXTS, embeddings=_X).update([None], embeddings=_X[:1]),
    lambda: fb.ThemeModel(min_theme_size=2).fit(_TEXTS, embeddings=_X).transform([None], embeddings=_X[:1]),
    lambda: fb.Deduper().fit([None, *_TEXTS[1:]], embeddings=_X),
    lambda: fb.Deduper().fit(_TEXTS, embeddings=_X).find(5, embeddings=_X[:1], k=2),
    lambda: fb.Deduper().fit(_TEXTS, embeddings=_X).find([None], embeddings=_X[:1], k=2),
], ids=["themes-none", "themes-int", "themes-update", "themes-transform", "dedupe-none", "find-int", "find-none"])
def test_non_text_items_beside_embeddings_are_input_errors(call):
    # were a TypeError/AttributeError deep in the labeller, or a None silently kept as a duplicate's text
    with pytest.raises(InvalidInputError, match="texts must be"):
        call()


@pytest.mark.parametrize("texts, match", [
    (5, "got int"), (float("nan"), "got float"), (None, "got NoneType"), ({"a": 1}, "got dict"),
    (pd.DataFrame({"text": ["export fails"]}), "DataFrame: pass its text column"),
])
def test_an_embedder_given_something_that_is_not_a_list_of_texts_says_so(texts, match):
    from feedback_nlp.embedding import _as_text_list

    with pytest.raises(InvalidInputError, match=match):  # list(DataFrame) would embed its column names
        _as_text_list(texts)
    assert _as_text_list(np.array("one text")) == ["one text"]  # a 0-d array is one text, not its characters


# --- train / eval: missing cells are named by their line ----------------------------------------------

def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("body, match", [
    ("text,label\n,bug\n   ,bug\nexport fails,bug\ndark mode,feature\n", r"no text in column 'text' at lines 2, 3;"),
    ("text,label\nexport fails,\nexport broken,bug\ndark mode,feature\n", r"no label in column 'label' at line 2;"),
])
def test_train_refuses_blank_texts_and_labels_naming_their_lines(tmp_path, capsys, body, match):
    # were trained on as the text "nan", or refused as "rows [0] have no label" (positions, not lines)
    code = main(["train", "--data", _write(tmp_path / "l.csv", body), "--out", str(tmp_path / "m"), "--holdout", "0"])
    assert code == 1
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "m").exists()


def test_train_multi_label_row_of_only_separators_is_named(tmp_path, capsys):
    data = _write(tmp_path / "l.csv", "text,areas\nexport fails,bug|\ndark mode,|\nlogin,auth\n")
    code = main(["train", "--data", data, "--label-col", "areas", "--multi-label", "--out", str(tmp_path / "m")])
    assert code == 1 and "no tag in column 'areas' (only '|') at line 3;" in capsys.readouterr().err


def test_train_parquet_missing_text_is_named_by_record(tmp_path, capsys):
    path = tmp_path / "l.parquet"
    pd.DataFrame({"text": ["export fails", None, "dark mode"], "label": ["bug", "bug", "feature"]}).to_parquet(path)
    code = main(["train", "--data", str(path), "--out", str(tmp_path / "m"), "--holdout", "0"])
    assert code == 1 and "no text in column 'text' at record 2;" in capsys.readouterr().err


def test_eval_refuses_rows_without_a_true_label_instead_of_scoring_them_wrong(tmp_path, capsys, monkeypatch):
    clf = fb.TagClassifier(HashEmbedder()).fit(["export fails", "export broken", "dark mode", "add dark mode"],
                                               ["bug", "bug", "feature", "feature"])
    monkeypatch.setattr(fb.TagClassifier, "load", classmethod(lambda cls, *a, **k: clf))
    data = _write(tmp_path / "l.csv", "text,label\nexport fails,bug\ndark mode,\n")
    assert main(["eval", "--model", "m", "--data", data]) == 1  # was accuracy 0.5 on a row that has no answer
    assert "no label in column 'label' at line 3;" in capsys.readouterr().err
    data = _write(tmp_path / "ok.csv", "text,label\nexport fails,bug\ndark mode,feature\n")
    assert main(["eval", "--model", "m", "--data", data, "--json"]) == 0


def test_train_with_the_text_as_its_own_label_is_a_usage_error(tmp_path, capsys):
    data = _write(tmp_path / "l.csv", "text,label\nexport fails,bug\n")
    assert main(["train", "--data", data, "--label-col", "text", "--out", str(tmp_path / "m")]) == 2
    assert "--text-col and --label-col are both 'text'" in capsys.readouterr().err


def test_train_seed_beyond_numpy_range_is_refused_before_any_work(tmp_path, capsys):
    data = _write(tmp_path / "l.csv", "text,label\nexport fails,bug\n")
    code = main(["train", "--data", data, "--out", str(tmp_path / "m"), "--random-state", str(2**32)])
    err = capsys.readouterr().err
    assert code == 2 and "--random-state: must be at most 4294967295" in err and "evaluating" not in err


# --- SIGTERM --------------------------------------------------------------------------------------

def test_sigterm_stops_a_command_like_ctrl_c_and_the_handler_is_put_back(tmp_path, capsys, monkeypatch):
    import os
    import signal
    import time

    import feedback_nlp.scoring as scoring

    def killed(*a, **k):  # a scheduler stopping the job mid-run: Python died at once, leaving its temp files
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the command")

    def guard(signum, frame):  # without the fix, SIGTERM would kill the test run itself
        raise RuntimeError("the command installed no SIGTERM handler")

    monkeypatch.setattr(scoring, "moscow", killed)
    data = _write(tmp_path / "s.csv", "theme,score\na,3\nb,1\n")
    before = signal.signal(signal.SIGTERM, guard)
    try:
        code = main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--framework", "moscow",
                     "--cutoffs", "3,2,1"])
        assert signal.getsignal(signal.SIGTERM) is guard  # put back after the command
    finally:
        signal.signal(signal.SIGTERM, before)
    assert code == 143 and capsys.readouterr().err == "error: terminated (SIGTERM)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


# --- public functions given the wrong kind of argument ---------------------------------------------

@pytest.mark.parametrize("source, match", [
    (None, "got NoneType"), (123, "got int"),
    ([{"id": "1", "text": "export fails"}], r"got dict \(records as dicts: pass pd.DataFrame\(records\)\)"),
])
def test_read_feedback_of_something_that_is_no_file_or_frame_says_what_it_reads(source, match):
    with pytest.raises(InvalidInputError, match=match):  # was a TypeError from os.fspath
        fb.read_feedback(source)


@pytest.mark.parametrize("value", [None, float("nan"), b"bytes"])
def test_redact_pii_of_a_non_string_names_the_type_like_clean_text(value):
    with pytest.raises(TypeError, match=f"redact_pii expects str, got {type(value).__name__}"):
        fb.redact_pii(value)


# --- themes of exact copies ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 40])
def test_groups_of_exact_copies_become_themes(n):
    # the graph clusterer cut each blob of copies into single items, all below min_theme_size: no theme at all
    texts = ["export fails"] * n + ["dark mode please"] * n
    model = fb.ThemeModel(HashEmbedder(), min_theme_size=min(n, 5)).fit(texts)
    assert sorted(model.themes_["size"].tolist()) == [n, n]
    assert (model.labels_[:n] == model.labels_[0]).all() and (model.labels_[n:] == model.labels_[n]).all()
    assert model.labels_[0] != model.labels_[n] and (model.labels_ >= 0).all()


def test_copies_among_ordinary_items_join_one_theme_without_swallowing_the_rest(hash_embedder):
    rng = np.random.default_rng(0)
    words = ["export", "csv", "fails", "dark", "mode", "invoice", "login", "sso", "slow", "board", "api", "sync"]
    other = [" ".join(rng.choice(words, 4)) for _ in range(60)]
    model = fb.ThemeModel(hash_embedder, min_theme_size=5).fit(other + ["the mobile app crashes on start"] * 12)
    copies = model.labels_[-12:]
    assert copies[0] >= 0 and (copies == copies[0]).all()
    assert (model.labels_[:-12] != copies[0]).all()  # nothing else was pulled into the copies' theme


# --- outputs that would break a saved model; dedupe against a backlog --------------------------------

@pytest.mark.parametrize("command", [
    ["themes", "--in", "{data}", "--out", "{model}"],
    ["report", "--in", "{data}", "--out", "{model}"],
    ["demo", "--out", "{model}"],
])
def test_a_folder_output_inside_a_saved_model_is_refused(tmp_path, capsys, command):
    # themes.csv, assignments.csv, … written into the model folder made it fail its manifest at the next load
    model = fb.TagClassifier(HashEmbedder()).fit(["export fails", "export broken", "dark mode", "add dark mode"],
                                                 ["bug", "bug", "feature", "feature"]).save(tmp_path / "model")
    listing = sorted(p.name for p in model.iterdir())
    data = _write(tmp_path / "in.csv", "id,text\n1,export fails\n2,dark mode\n")
    argv = [a.format(data=data, model=model) for a in command]
    assert main(argv) == 1
    assert "is a saved feedback_nlp model folder" in capsys.readouterr().err
    assert sorted(p.name for p in model.iterdir()) == listing


def test_dedupe_of_a_file_against_itself_never_matches_an_item_to_itself(tmp_path, hashed_cli):
    data = _write(tmp_path / "in.csv", "id,text\n1,export fails now\n2,export fails now please\n3,dark mode\n")
    out = tmp_path / "m.csv"
    assert main(["dedupe", "--in", data, "--against", data, "--out", str(out), "--k", "2", "--threshold", "0.5"]) == 0
    matches = pd.read_csv(out)  # each item was its own best duplicate, score 1.0
    assert sorted(zip(matches["query_id"], matches["match_id"])) == [(1, 2), (2, 1)]


def test_dedupe_against_a_backlog_reports_the_backlogs_rejected_rows(tmp_path, capsys, hashed_cli):
    new = _write(tmp_path / "new.csv", "id,text\n1,export fails\n2,\n")
    backlog = _write(tmp_path / "backlog.csv", "id,text\nb1,export fails\nb2,N/A\nb3,   \n")
    out = tmp_path / "m.csv"
    assert main(["dedupe", "--in", new, "--against", backlog, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_in"], summary["rows_rejected"]) == (2, 1)  # the --in file's own accounting is unchanged
    assert (summary["backlog_rows_in"], summary["backlog_rows_rejected"]) == (3, 2)
    errors = pd.read_csv(tmp_path / "m.errors.csv", dtype=str)  # the backlog's rejects were silently dropped
    assert sorted(zip(errors["id"], errors["source_file"])) == [("2", new), ("b2", backlog), ("b3", backlog)]


# --- saved folders whose manifest was recomputed after an edit ---------------------------------------

def _rehash(folder):
    """What an attacker (or a careless script) does after editing a file: recompute the checksums."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _theme_edits():
    def arrays(edit):
        def apply(folder):
            with np.load(folder / "themes.npz") as data:
                saved = {k: data[k] for k in data.files}
            edit(saved)
            np.savez(folder / "themes.npz", **saved)
        return apply

    return {
        "garbage-npz": lambda f: (f / "themes.npz").write_bytes(b"garbage"),
        "centroids-of-another-width": arrays(lambda a: a.update(centroids=a["centroids"][:, :3])),
        "labels-cut-short": arrays(lambda a: a.update(labels=a["labels"][:2])),
        "array-missing": arrays(lambda a: a.pop("theme_ids")),
        "items-not-json": lambda f: (f / "items.json").write_text('{"texts": '),
        "items-without-texts": lambda f: (f / "items.json").write_text('{"ids": []}'),
        "config-without-params": lambda f: (f / "config.json").write_text(json.dumps(
            {k: v for k, v in json.loads((f / "config.json").read_text()).items() if k != "params"})),
    }


@pytest.mark.parametrize("edit", list(_theme_edits()))
def test_a_theme_model_with_forged_checksums_is_an_integrity_error(tmp_path, hash_embedder, edit):
    texts = ["export fails"] * 6 + ["dark mode please"] * 6
    folder = fb.ThemeModel(hash_embedder, min_theme_size=3).fit(texts).save(tmp_path / "themes")
    _theme_edits()[edit](folder)
    _rehash(folder)  # was a KeyError, a numpy ValueError, a JSONDecodeError, or a model that loaded and misbehaved
    # a garbage array file is named by the checked readers (round 15b) before any load reads it
    with pytest.raises(fb.IntegrityError, match="pass manifest.json but not what a save writes|"
                                                 "is not a readable .npz archive|is not an array a save writes"):
        fb.ThemeModel.load(folder, embedder=hash_embedder)


@pytest.mark.parametrize("edit", [
    lambda f: (f / "embeddings.npy").write_bytes(b"garbage"),
    lambda f: np.save(f / "embeddings.npy", np.ones((1, 64), dtype=np.float32)),
    lambda f: (f / "items.json").write_text("[]"),
], ids=["garbage-npy", "fewer-vectors-than-ids", "items-a-list"])
def test_a_duplicate_index_with_forged_checksums_is_an_integrity_error(tmp_path, hash_embedder, edit):
    folder = fb.Deduper(hash_embedder).fit(["export fails", "dark mode", "login loops"]).save(tmp_path / "index")
    edit(folder)
    _rehash(folder)
    # a garbage array file is named by the checked readers (round 15b) before any load reads it
    with pytest.raises(fb.IntegrityError, match="pass manifest.json but not what a save writes|"
                                                 "is not a readable .npz archive|is not an array a save writes"):
        fb.Deduper.load(folder, embedder=hash_embedder)


# --- score names lines, not 0-based positions ---------------------------------------------------------

@pytest.mark.parametrize("body, framework, message", [
    ('theme,reach,impact,confidence,effort\na,100,1,0.5,1\n"two\nlines",200,2,0.8,1\nc,,1,0.5,1\n', "rice",
     "reach has NaN or infinite values at line 5"),  # was "at positions 2"
    ("theme,reach,impact,confidence,effort\na,100,1,0.5,1\nb,200,2,0.8,0\n", "rice",
     r"effort must be > 0 \(person-months\) at line 3"),
    ("theme,reach,impact,confidence,effort\na,x,1,0.5,1\n", "rice",
     "column 'reach' has non-numeric values at line 2 \\(e.g. 'x'\\)"),  # was "in rows [0]"
])
def test_score_errors_name_the_lines_of_the_file(tmp_path, capsys, body, framework, message):
    data = _write(tmp_path / "s.csv", body)
    assert main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--framework", framework]) == 1
    assert re.search(message, capsys.readouterr().err)


def test_a_jsonl_file_whose_first_record_lacks_the_text_field_is_read_not_refused(tmp_path, hashed_cli):
    # JSON records need not carry every field: the CLI looked at the first record only and refused the file
    data = _write(tmp_path / "in.jsonl", '{"id": "1", "body": "deleted"}\n{"id": "2", "text": "export fails"}\n')
    assert main(["dedupe", "--in", data, "--out", str(tmp_path / "d.csv")]) == 0
    errors = pd.read_csv(tmp_path / "d.errors.csv", dtype=str)
    assert errors[["row", "id", "reason"]].values.tolist() == [["1", "1", "missing text"]]
    data = _write(tmp_path / "typo.jsonl", '{"id": "1", "body": "export fails"}\n')
    assert main(["dedupe", "--in", data, "--out", str(tmp_path / "d2.csv")]) == 2  # a real typo is still caught


@pytest.mark.parametrize("scores", [["a", "b"], ["high", 0.5], [{"x": 1}, 0.5]])
def test_calibrate_threshold_of_non_numeric_scores_is_an_input_error(scores):
    with pytest.raises(InvalidInputError, match="scores must be numbers"):  # was numpy's ValueError/TypeError
        fb.calibrate_threshold(scores, [1, 0])


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "shift_jis"])
@pytest.mark.parametrize("name", ["t.csv", "t.jsonl", "t.json"])
def test_a_utf8_file_declared_in_a_single_byte_code_page_is_refused_not_garbled(tmp_path, encoding, name):
    rows = [("1", "Café crème menu is broken"), ("2", "Export fails")]
    body = ("id,text\n" + "".join(f"{i},{t}\n" for i, t in rows) if name.endswith(".csv") else
            "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in rows) if name.endswith(".jsonl")
            else json.dumps([{"id": i, "text": t} for i, t in rows], ensure_ascii=False))
    path = tmp_path / name
    path.write_bytes(body.encode("utf-8"))  # read as latin-1 without a single error: 'CafÃ© crÃ¨me' in the output
    with pytest.raises(EncodingError, match=f"is UTF-8 .* encoding '{encoding}' was declared"):
        fb.read_feedback(path, encoding=encoding)
    assert fb.read_feedback(path).records["text"].tolist()[0] == "Café crème menu is broken"


def test_declared_code_pages_still_read_their_own_files_and_plain_ascii(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\n1,Café crème\n".encode("cp1252"))
    assert fb.read_feedback(latin, encoding="cp1252").records["text"].tolist() == ["Café crème"]
    ascii_only = tmp_path / "ascii.csv"
    ascii_only.write_bytes(b"id,text\n1,Export fails\n")  # valid in both: nothing to garble, nothing refused
    assert fb.read_feedback(ascii_only, encoding="latin-1").records["text"].tolist() == ["Export fails"]


# --- commands that need rows, when every row is rejected -----------------------------------------------

@pytest.mark.parametrize("command", [
    ["dedupe", "--in", "{bad}", "--out", "{tmp}/d.csv"],
    ["dedupe", "--in", "{good}", "--against", "{bad}", "--out", "{tmp}/d.csv"],
    ["themes", "--in", "{bad}", "--out", "{tmp}/themes"],
])
def test_when_every_row_is_rejected_the_error_says_why(tmp_path, capsys, hashed_cli, command):
    # was "cannot fit … on an empty corpus" after a warning pointing at an errors file that is never written
    bad = _write(tmp_path / "bad.csv", "id,text\n1,\n2,N/A\n3,   \n")
    good = _write(tmp_path / "good.csv", "id,text\n1,export fails\n")
    assert main([a.format(bad=bad, good=good, tmp=tmp_path) for a in command]) == 1
    err = capsys.readouterr().err
    assert (f"{bad} has no usable feedback rows: all 3 were rejected (2 × empty text after cleaning; "
            "1 × placeholder text 'N/A')") in err and "see the errors file" not in err


def test_a_header_only_file_says_it_has_no_rows(tmp_path, capsys, hashed_cli):
    data = _write(tmp_path / "h.csv", "id,text\n")
    assert main(["themes", "--in", data, "--out", str(tmp_path / "t")]) == 1
    assert f"{data} has no rows" in capsys.readouterr().err


def test_report_of_a_file_whose_rows_are_all_rejected_says_why(tmp_path, hash_embedder):
    data = _write(tmp_path / "bad.csv", "id,text\n1,\n2,N/A\n")
    with pytest.raises(InvalidInputError, match=r"has no usable feedback rows: all 2 were rejected \(1 × empty text"):
        fb.build_report(data, out_dir=tmp_path / "r", embedder=hash_embedder)


# --- trend periods --------------------------------------------------------------------------------

def test_a_trend_period_of_a_second_is_refused_instead_of_filling_memory(hash_embedder):
    # themes --freq 1s over three months of items grew to 20 GB before the run was killed
    times = pd.date_range("2026-01-01", periods=12, freq="7D", tz="UTC")
    model = fb.ThemeModel(hash_embedder, min_theme_size=3).fit(["export fails"] * 6 + ["dark mode"] * 6,
                                                                timestamps=times)
    with pytest.raises(InvalidInputError, match=r"freq 's' cuts the 77 days .* into about 6,\d{3},\d{3} periods"):
        model.trends("s")
    assert len(model.trends("W")) > 0


def test_report_sections_refuse_too_many_periods_too():
    from feedback_nlp.report_sentiment import sentiment_over_time
    from feedback_nlp.report_status import asked_vs_delivered

    items = pd.DataFrame({"created_at": ["2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"],
                          "sentiment": ["positive", "negative"], "status": ["open", "open"]})
    with pytest.raises(InvalidInputError, match="periods .at most 10,000."):
        sentiment_over_time(items, "min")
    with pytest.raises(InvalidInputError, match="periods .at most 10,000."):
        asked_vs_delivered(items, "min")
    assert len(sentiment_over_time(items, "W")) == 9


def test_a_huge_chunk_size_reads_parquet_as_it_reads_csv(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1", "2"], "text": ["export fails", "dark mode"]}).to_parquet(path)
    from feedback_nlp.records import iter_table_chunks

    chunks = list(iter_table_chunks(path, 10**20))  # was an OverflowError from Arrow ("unexpected" in the CLI)
    assert [len(c) for c in chunks] == [2]


# --- train options that cannot work together, and labels outside the taxonomy -------------------------

@pytest.mark.parametrize("extra, message", [
    (["--zero-shot"], "--zero-shot tags by the taxonomy's tag names and descriptions: give --taxonomy FILE"),
    (["--keep-base"], "--keep-base adds the frozen base model's vectors"),  # was accepted and silently ignored
    (["--keep-base", "--head", "logreg"], "use it with --head finetune, contrastive or auto"),
])
def test_train_option_combinations_that_cannot_work_are_usage_errors(tmp_path, capsys, extra, message):
    data = _write(tmp_path / "l.csv", "text,label\nexport fails,bug\n")
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_train_labels_outside_the_taxonomy_are_named_by_line(tmp_path, capsys, hashed_cli):
    taxonomy = _write(tmp_path / "t.yaml", "tags:\n - {id: bug, name: Bug}\n - {id: feature, name: Feature}\n")
    data = _write(tmp_path / "l.csv", 'text,label\nexport fails,bug\n"dark\nmode",feature\nhow do I,question\n'
                                      "login loops,bug\nadd sso,feature\n")
    code = main(["train", "--data", data, "--taxonomy", taxonomy, "--out", str(tmp_path / "m"), "--holdout", "0"])
    assert code == 1  # was "in rows [2]": a position in a list, where the file has the row on line 5
    assert "labels not in taxonomy 'taxonomy': 'question' at line 5" in capsys.readouterr().err


# --- secrets ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_a_key_file_that_never_ends_is_refused_not_read_into_memory(tmp_path, source):
    from feedback_nlp.integrations.quackback import QuackbackError
    from feedback_nlp.integrations.quackback._secrets import read_secret

    if source == "big":
        source = tmp_path / "key.txt"
        source.write_text("k" * 100_000)
    with pytest.raises(QuackbackError, match="is over 64 KB: not a key file"):  # /dev/zero ran out of memory
        read_secret(source, what="API key")
    ok = tmp_path / "ok.txt"
    ok.write_text("qb_live_123\n")
    assert read_secret(ok).reveal() == "qb_live_123"


# --- serve options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--port", "70000"], "--port: must be a TCP port in 0-65535, got 70000"),  # was an 'unexpected OverflowError'
    (["--port", "-1"], "--port: must be a TCP port in 0-65535, got -1"),
    (["--graceful-timeout", "nan"], "--graceful-timeout: must be a finite number >= 0"),
])
def test_serve_options_out_of_range_are_usage_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)  # had the option passed, the server would have made its data folder here
    assert main(["serve", *argv]) == 2 and message in capsys.readouterr().err


def test_serve_max_wait_nan_is_refused():
    pytest.importorskip("fastapi")
    from feedback_nlp.service import ServiceConfig

    with pytest.raises(InvalidInputError, match="max_wait_ms must be a finite number >= 0, got nan"):
        ServiceConfig(max_wait_ms=float("nan"))  # NaN passed "< 0" and the server ran with it


def test_an_extension_that_fails_is_named_as_the_failure(tmp_path):
    pytest.importorskip("fastapi")
    from feedback_nlp.service import ServiceConfig, create_app

    def broken(app, state):
        raise TypeError("takes 1 argument")

    with pytest.raises(fb.FeedbackNLPError, match=r"extension .*broken failed while installing: TypeError"):
        create_app(ServiceConfig(data_dir=str(tmp_path / "data")), extensions=[broken])


# --- cleaning in linear time --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["\n" * 60_000, "\n \n" * 20_000, "\r\n" * 30_000, "\n\t" * 30_000])
def test_a_text_of_blank_lines_is_cleaned_in_linear_time(text):
    import time

    start = time.monotonic()
    assert fb.clean_text(text) == ""  # 20,000 newlines took minutes (line-anchored \s* crossed newlines)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("text, cleaned", [
    ("Export broken\n\n\nOn Mon, Bob wrote:\r\n> old stuff", "Export broken"),
    ("\n\n  On Mon, Bob wrote:\nplease fix export", "On Mon, Bob wrote: please fix export"),  # a forward: kept
    ("Export broken\n\n-- \nBob\nCEO", "Export broken"),
    ("Export broken\nSent from my iPhone\u00a0", "Export broken"),
])
def test_replies_and_signatures_are_stripped_as_before(text, cleaned):
    assert fb.clean_text(text) == cleaned


# --- export zips ------------------------------------------------------------------------------------

def test_a_slack_zip_member_that_unpacks_beyond_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import zipfile
    from pathlib import Path

    import feedback_nlp.connectors.slack as slack

    folder = Path(__file__).parent / "fixtures" / "ingest" / "slack_export"
    bomb = tmp_path / "export.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*.json")):
            zf.write(p, p.relative_to(folder).as_posix())
        zf.writestr("product-feedback/2026-03-03.json", "[" + " " * 3_000_000 + "]")  # 3 MB from a few KB
    assert bomb.stat().st_size < 100_000
    monkeypatch.setattr(slack, "MAX_MEMBER_BYTES", 1 << 20)  # the real limit is 512 MB: a bomb of GBs
    data = fb.read_feedback(bomb, format="slack")  # that file is one rejected row; the other files are read
    assert data.rejected["reason"].tolist()[-1] == ("product-feedback/2026-03-03.json in the Slack export "
                                                    f"{bomb} unpacks to 3,000,002 bytes (over 1 MB): not a Slack day file")
    monkeypatch.setattr(slack, "MAX_MEMBER_BYTES", 8 << 20)
    assert len(fb.read_feedback(bomb, format="slack").records) == len(data.records) > 0


@pytest.mark.parametrize("name, encoding", [("t.csv.gz", None), ("t.jsonl", None), ("t.csv", "utf-16")])
def test_a_line_without_end_is_refused_before_it_fills_memory(tmp_path, monkeypatch, name, encoding):
    import gzip

    import feedback_nlp.connectors._tables as tables

    monkeypatch.setattr(tables, "MAX_LINE", 10_000)  # 64 MB in use: a gzip of 100 KB held a 100 MB line
    body = "id,text\n1,export fails\n2," + "a" * 20_000 + "\n3,dark mode\n"
    if name.endswith(".jsonl"):
        body = '{"id": "1", "text": "export fails"}\n{"id": "2", "text": "' + "a" * 20_000 + '"}\n'
    data = body.encode(encoding or "utf-8")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(fb.InputFileError, match=r"line \d is longer than 0 MB \(no line breaks\?\)"):
        fb.read_feedback(path, encoding=encoding)
    monkeypatch.setattr(tables, "MAX_LINE", 1 << 20)
    assert len(fb.read_feedback(path, encoding=encoding)) >= 2  # under the limit: read (the long row rejected)
