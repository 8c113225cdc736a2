"""Hostile and unusual inputs found by a red-team pass: each case crashed, hung or silently misbehaved.

Every test here failed before its fix. They use the hash embedder (tests/conftest.py) wherever a real
model is not the point, and stay fast.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import threading
import warnings

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from feedback_nlp.errors import EncodingError, InputFileError, InputNotFoundError, TaxonomyError

# --- ingest -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, body", [
    ("deep.json", b"[" * 100_000 + b"]" * 100_000),
    ("deep.jsonl", b'{"id": "1", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),
])
def test_absurdly_nested_json_is_an_error_not_a_recursion_crash(tmp_path, name, body):
    path = tmp_path / name
    path.write_bytes(body)
    if name.endswith(".jsonl"):  # one bad line: rejected by line, the rest of the file would read on
        path.write_bytes(body + b'{"id": "2", "text": "export fails"}\n')
        data = fb.read_feedback(path)
        assert data.records["id"].tolist() == ["2"]
        assert data.rejected[["row", "reason"]].values.tolist() == [[1, "malformed JSON line (nested too deeply)"]]
    else:
        with pytest.raises(InputFileError, match="nested too deeply"):
            fb.read_feedback(path)


def test_a_pipe_or_device_is_refused_instead_of_hanging(tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    done = threading.Event()

    def release_readers() -> None:  # a reader that did open the FIFO gets end-of-file: the test cannot hang
        while not done.wait(0.2):
            with contextlib.suppress(OSError):  # nobody reading: nothing to release
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=release_readers, daemon=True).start()
    try:
        with pytest.raises(InputFileError, match="not a regular file"):
            fb.read_feedback(fifo)
        with pytest.raises(InputFileError, match="not a regular file"):
            fb.read_feedback("/dev/zero", format="csv")
    finally:
        done.set()


def test_gzip_data_without_a_gz_name_says_so(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(gzip.compress(b"id,text\n1,export fails\n"))
    with pytest.raises(EncodingError, match="gzip-compressed"):
        fb.read_feedback(path)


def test_a_dataframe_with_two_text_columns_reads_like_the_same_csv(tmp_path):
    frame = pd.DataFrame([["1", "first text", "second text"]], columns=["id", "text", "text"])
    csv = tmp_path / "two.csv"
    csv.write_text("id,text,text\n1,first text,second text\n")
    from_frame, from_csv = fb.read_feedback(frame), fb.read_feedback(csv)
    assert from_frame.records["text"].tolist() == from_csv.records["text"].tolist() == ["first text"]
    assert from_frame.records["text.1"].tolist() == from_csv.records["text.1"].tolist() == ["second text"]


def test_thousands_of_extra_columns_read_in_one_step_without_warnings(tmp_path):
    n = 5000
    path = tmp_path / "wide.csv"
    header = ",".join(f"q{i}" for i in range(n)) + ",text\n"
    path.write_text(header + ",".join("x" for _ in range(n)) + ",hello there\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' PerformanceWarning per inserted column, before the fix
        data = fb.read_feedback(path)
        assert data.records.shape[1] >= n + 2 and data.records["q4999"].tolist() == ["x"]
        path.write_text(header)  # header only: the columns are still checked and kept
        assert fb.read_feedback(path).records.shape == (0, data.records.shape[1])


@pytest.mark.parametrize("line, reason", [
    (b'{"id": [1], "text": "a b"}\n', "id is a list"),
    (b'{"id": {"x": 1}, "text": "a b"}\n', "id is a dict"),
    (b'{"id": null, "text": "a b"}\n', "missing id"),
])
def test_a_list_or_object_id_is_not_reported_as_missing(tmp_path, line, reason):
    path = tmp_path / "ids.jsonl"
    path.write_bytes(line)
    assert fb.read_feedback(path).rejected["reason"].iloc[0].startswith(reason)


def test_negative_zero_revenue_is_zero():
    data = fb.read_feedback(pd.DataFrame({"id": ["1"], "text": ["a b"], "account_revenue": ["-0"]}))
    assert np.signbit(data.records["account_revenue"].iloc[0]) == np.False_


# --- taxonomy files -----------------------------------------------------------------------------------

def _yaml(tmp_path, text: str, name: str = "tax.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_booleans_and_numbers_stay_as_written(tmp_path):
    tax = fb.Taxonomy.load(_yaml(tmp_path, "tags:\n - {id: yes, name: Yes}\n - {id: no, name: no}\n"
                                           " - {id: 0x10, name: on}\n - {id: 1.0, name: off, parent: 0x10}\n"))
    assert tax.ids == ["yes", "no", "0x10", "1.0"]
    assert [tax[t].name for t in tax.ids] == ["Yes", "no", "on", "off"]
    assert tax.ancestors("1.0") == ["0x10"]


@pytest.mark.parametrize("text", [
    # billion laughs: 9**9 values from a few hundred bytes
    "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "tags:\n - {id: x, name: x, examples: *i}\n",
    "tags: &t\n - {id: a, name: A, examples: *t}\n",  # an alias inside itself
])
def test_yaml_alias_bombs_are_refused(tmp_path, text):
    with pytest.raises(TaxonomyError):
        fb.Taxonomy.load(_yaml(tmp_path, text))


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("tags: 5\n", "list of mappings"),
    ("hello\n", "got str"),
    ("tags:\n - {id: a, name: A, examples: {a: 1}}\n", "examples must be a list"),
    ("tags:\n - {id: a, name: [A, B]}\n", "list as its name"),
    ('tags:\n - {id: "a\\nb", name: A}\n', "control character"),
])
def test_malformed_taxonomy_files_are_taxonomy_errors(tmp_path, text, match):
    with pytest.raises(TaxonomyError, match=match):
        fb.Taxonomy.load(_yaml(tmp_path, text))


def test_taxonomy_json_true_id_is_refused():
    with pytest.raises(TaxonomyError, match="bool as its id"):
        fb.Taxonomy([{"id": True, "name": "Yes"}])


def test_unreadable_taxonomy_paths_are_feedback_nlp_errors(tmp_path):
    with pytest.raises(InputNotFoundError):
        fb.Taxonomy.load(tmp_path / "missing.yaml")
    with pytest.raises(TaxonomyError, match="not a regular file"):
        fb.Taxonomy.load(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("tags:\n - {id: caf\xe9, name: c}\n".encode("latin-1"))
    with pytest.raises(TaxonomyError, match="not UTF-8"):
        fb.Taxonomy.load(latin)


def test_a_deep_parent_chain_is_checked_in_linear_time():
    tags = [{"id": f"t{i}", "name": f"T{i}", "parent": f"t{i - 1}" if i else None} for i in range(5000)]
    assert fb.Taxonomy(tags).depth("t4999") == 4999  # cubic before: minutes for 3000 levels


# --- text content -------------------------------------------------------------------------------------

def test_bidi_override_controls_are_removed_like_zero_width_characters():
    # "Trojan Source": U+202E shows "gnp.exe" as "exe.png" in the report, a spreadsheet or a terminal
    assert fb.clean_text("invoice \u202egnp.exe\u202c and \u2066x\u2069") == "invoice gnp.exe and x"
    assert fb.clean_text("\u0645\u0631\u062d\u0628\u0627 world") == "\u0645\u0631\u062d\u0628\u0627 world"  # RTL text kept


def test_lone_surrogates_are_a_reject_and_an_input_error_not_a_tokenizer_crash():
    frame = pd.DataFrame({"id": ["1", "2"], "text": ["caf\udce9 broken", "export fails"]}, dtype=object)
    data = fb.read_feedback(frame)
    assert data.records["id"].tolist() == ["2"]
    assert data.rejected["reason"].iloc[0].startswith("invalid characters (lone surrogates")
    with pytest.raises(fb.InvalidInputError, match="lone surrogates"):
        fb.Embedder(cache=False).prepare(["ok", "caf\udce9"])


# --- estimators and saved artefacts -----------------------------------------------------------------------

_X = ["the app crashes on upload", "crash when saving", "please add dark mode", "add export to csv",
      "billing charged twice", "refund my payment"] * 3
_Y = ["bug", "bug", "feature", "feature", "billing", "billing"] * 3


def test_an_embedder_of_another_size_is_a_model_mismatch_not_a_matmul_error(tmp_path, hash_embedder):
    from conftest import HashEmbedder

    clf = fb.TagClassifier(embedder=hash_embedder).fit(_X, _Y)
    clf.save(tmp_path / "m")
    loaded = fb.TagClassifier.load(tmp_path / "m", embedder=HashEmbedder(dim=32))  # same model id, 32 dims
    with pytest.raises(fb.ModelMismatchError, match="32-dimensional"):
        loaded.predict(["the app crashes"])


@pytest.mark.parametrize("make", [
    lambda e: fb.TagClassifier(embedder=e).fit(_X, _Y),
    lambda e: fb.Deduper(embedder=e).fit(_X),
    lambda e: fb.ThemeModel(embedder=e, min_theme_size=3).fit(_X),
])
def test_saving_into_a_file_or_a_foreign_folder_is_refused(tmp_path, hash_embedder, make):
    model = make(hash_embedder)
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    with pytest.raises(fb.InvalidInputError, match="it is a file"):
        model.save(afile)
    project = tmp_path / "project"
    project.mkdir()
    (project / "data.csv").write_text("id,text\n")
    with pytest.raises(fb.InvalidInputError, match="holds other files"):
        model.save(project)  # the manifest would have adopted the project's files
    assert sorted(p.name for p in project.iterdir()) == ["data.csv"]
    model.save(tmp_path / "m")
    model.save(tmp_path / "m")  # replacing an earlier save is fine
    assert type(model).load(tmp_path / "m", embedder=hash_embedder) is not None


@pytest.mark.parametrize("threshold", [0, -1, 2, float("nan"), True])
def test_deduper_per_call_threshold_follows_the_constructor_rule(hash_embedder, threshold):
    dd = fb.Deduper(embedder=hash_embedder).fit(_X)
    with pytest.raises(fb.InvalidInputError, match="threshold must be in"):
        dd.pairs(threshold=threshold)  # 0 or below listed every pair: n² rows
    with pytest.raises(fb.InvalidInputError, match="threshold must be in"):
        dd.groups(threshold=threshold)


def test_deduper_groups_min_size_below_one_is_refused(hash_embedder):
    with pytest.raises(fb.InvalidInputError, match="min_size"):
        fb.Deduper(embedder=hash_embedder).fit(_X).groups(min_size=0)


def test_theme_trends_bad_freq_and_undated_items_are_input_errors(hash_embedder):
    tm = fb.ThemeModel(embedder=hash_embedder, min_theme_size=3)
    tm.fit(_X, timestamps=pd.date_range("2024-01-01", periods=len(_X), freq="D"))
    with pytest.raises(fb.InvalidInputError, match="freq must be a period"):
        tm.trends(freq="XYZ")
    with pytest.raises(fb.InvalidInputError, match="recent_periods"):
        tm.trends(recent_periods=0)
    undated = fb.ThemeModel(embedder=hash_embedder, min_theme_size=3).fit(_X, timestamps=[pd.NaT] * len(_X))
    with pytest.raises(fb.InvalidInputError, match="none of this model's items has a date"):
        undated.trends()


def test_a_report_on_a_handful_of_items_prints_no_matplotlib_warning(tmp_path, hash_embedder):
    frame = pd.DataFrame({"id": ["1", "2", "3"], "text": ["export fails", "dark mode please", "login loops"],
                          "created_at": ["2024-01-01", "2024-01-08", "2024-01-15"]})
    tax = fb.Taxonomy([{"id": "bug", "name": "Bug"}, {"id": "feature", "name": "Feature request"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "No artists with labels found to put in legend"
        fb.build_report(frame, tmp_path / "r", taxonomy=tax, embedder=hash_embedder, min_theme_size=2)
    assert (tmp_path / "r" / "report.html").exists()


def test_tag_file_with_a_fitted_classifier_or_a_missing_input_says_what_to_do(tmp_path, hash_embedder):
    clf = fb.TagClassifier(embedder=hash_embedder).fit(_X, _Y)
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,export fails\n")
    with pytest.raises(fb.InvalidInputError, match="save it first"):
        fb.tag_file(clf, src, tmp_path / "out.csv")  # was: TypeError from Path()
    with pytest.raises(InputNotFoundError):
        fb.tag_file("request-type", tmp_path / "missing.csv", tmp_path / "out.csv")


@pytest.mark.parametrize("scores, got", [([], "got 0"), ([5.0], "got 1"), (5.0, "got a scalar")])
def test_moscow_without_enough_scores_says_so(scores, got):
    with pytest.raises(fb.InvalidInputError, match=f"at least 2 scores \\({got}\\)"):
        fb.moscow(scores)  # an empty list was told it was "a single score"


@pytest.mark.parametrize("command", ["themes", "report"])
def test_min_theme_size_one_is_a_usage_error_before_any_work(tmp_path, capsys, command):
    from feedback_nlp.cli import main

    data = tmp_path / "in.csv"
    data.write_text("id,text\n1,export fails\n")
    assert main([command, "--in", str(data), "--out", str(tmp_path / "out"), "--min-theme-size", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and ">= 2" in err[0]  # was exit 1 after reading
    assert not (tmp_path / "out").exists()


def test_columns_mapping_two_inputs_onto_one_name_is_a_column_error():
    frame = pd.DataFrame({"id": ["1"], "body": ["aa bb"], "msg": ["cc dd"]})
    with pytest.raises(fb.ColumnError, match="several input columns"):
        fb.read_feedback(frame, columns={"body": "text", "msg": "text"})  # was AttributeError
    with pytest.raises(fb.ColumnError, match="two columns named"):
        fb.read_feedback(frame.assign(text="ee"), columns={"body": "text"})
    with pytest.raises(fb.ColumnError, match="reserved"):
        fb.read_feedback(frame, columns={"msg": "_row", "body": "text"})  # was ValueError from int()


@pytest.mark.parametrize("name", ["_error", "_raw"])
def test_a_user_column_with_a_reserved_name_is_refused_not_taken_as_parse_errors(name):
    frame = pd.DataFrame({"id": ["1"], "text": ["export fails"], name: ["whatever"]})
    with pytest.raises(fb.ColumnError, match="reserves"):
        fb.read_feedback(frame)  # an "_error" column rejected every row, its value as the reason


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_a_utf8_bom_file_declared_latin1_is_refused_not_read_with_row_numbers_as_ids(tmp_path, encoding):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\nT-1,export fails\n")
    with pytest.raises(EncodingError, match="UTF-8 byte-order mark"):
        fb.read_feedback(path, encoding=encoding)  # was: id column "ï»¿id" not found, ids became "2"


def test_tag_with_repeated_ids_is_refused(hash_embedder):
    clf = fb.TagClassifier(embedder=hash_embedder).fit(_X, _Y)
    with pytest.raises(fb.InvalidInputError, match="ids must be unique"):
        clf.tag(_X[:3], ids=["a", "b", "a"])  # joined back, row "a" would get two different results
    assert clf.tag(_X[:2], ids=["a", "b"])["id"].tolist() == ["a", "b"]


# --- JSON objects that name a key twice: json keeps the last value silently, we reject the record ---------

def test_duplicate_json_keys_reject_the_record(tmp_path):
    from feedback_nlp import read_feedback

    lines = tmp_path / "dup.jsonl"
    lines.write_text('{"id": "1", "text": "first text"}\n'
                     '{"id": "2", "text": "the real text", "text": "which one?"}\n'
                     '{"id": "3", "id": "4", "text": "two ids"}\n'
                     '{"id": "5", "text": "nested duplicates are metadata", "meta": {"a": 1, "a": 2}}\n')
    records, rejected = read_feedback(lines)
    assert records["id"].tolist() == ["1", "5"]
    assert rejected["row"].tolist() == [2, 3]
    assert rejected["reason"].tolist() == ["JSON object names the key(s) 'text' twice",
                                           "JSON object names the key(s) 'id' twice"]
    whole = tmp_path / "dup.json"
    whole.write_text('[{"id": "1", "text": "ok"}, {"id": "2", "text": "a", "text": "b"}]')
    records, rejected = read_feedback(whole)
    assert records["id"].tolist() == ["1"]
    assert rejected["reason"].tolist() == ["JSON object names the key(s) 'text' twice"]


@pytest.mark.parametrize("flag", ["--in", "--out"])
def test_dash_for_stdin_or_stdout_is_a_clear_usage_error(tmp_path, capsys, flag):
    from feedback_nlp.cli import main

    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,hello world\n")
    args = {"--in": str(src), "--out": str(tmp_path / "out.csv")}
    args[flag] = "-"
    assert main(["tag", "--model", "request-type", *[x for kv in args.items() for x in kv]]) == 2
    err = capsys.readouterr().err
    assert "not supported" in err and ("standard input" in err if flag == "--in" else "standard output" in err)
    assert "Traceback" not in err


def test_a_report_with_a_teams_own_embedder_uses_the_bundled_models_with_their_own(tmp_path, hash_embedder):
    # the bundled request-type and sentiment models were built on all-MiniLM-L6-v2: with another embedder
    # (hash_embedder stands for a team's own model) they embed the texts themselves instead of failing
    frame = pd.DataFrame({"id": ["1", "2", "3", "4"],
                          "text": ["The export crashes every time, terrible", "Please add dark mode",
                                   "Love the new dashboard, great work", "How do I reset my password?"],
                          "created_at": ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]})
    summary = fb.build_report(frame, tmp_path / "r", embedder=hash_embedder, min_theme_size=2)
    items = pd.read_csv(tmp_path / "r" / "items.csv")
    assert items["sentiment_source"].eq("model").all()
    assert items.set_index("id").loc[3, "sentiment"] == "positive"
    assert set(items["tags"].map(str)) - {"[]"}  # request types were predicted
    assert summary.html.exists()
