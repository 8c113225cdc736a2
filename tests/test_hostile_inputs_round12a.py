"""Round 12a of hostile and unusual inputs: the command line as a scripted batch user and a careless user run
it (``train``, ``eval``, ``dedupe``, ``themes``, ``report``, ``score``, ``backends``, ``demo``, ``keys``).

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model everywhere: none of them is about embedding quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _hostile_support import write_file
from feedback_nlp.cli import main


def _feedback(folder: Path, rows: int = 30) -> str:
    lines = "".join(f"{i},export csv fails number {i % 3},2026-01-0{1 + i % 5}\n" for i in range(rows))
    return write_file(folder / "feedback.csv", "id,text,created_at\n" + lines)


def test_an_output_folder_holding_a_subfolder_named_x_is_writable(tmp_path, hashed_cli, capsys):
    """The check that an output folder can take files probed a file named ``x`` inside it: a folder holding a
    subfolder (or pipe) called ``x`` refused the whole run with "exists and is not a regular file (a device,
    pipe or socket): x". Now the folder itself is checked, and the run writes its tables."""
    data = _feedback(tmp_path)
    out = tmp_path / "out"
    (out / "x").mkdir(parents=True)
    assert main(["themes", "--in", data, "--out", str(out), "--min-theme-size", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    assert (out / "themes.csv").is_file() and (out / "x").is_dir()


def _hashed_model(folder: Path) -> Path:
    import feedback_nlp as fb
    from conftest import HashEmbedder

    return fb.TagClassifier(HashEmbedder()).fit(["export fails", "csv export broken", "add dark mode", "please add sso"],
                                                ["bug", "bug", "request", "request"]).save(folder)


def test_keys_never_write_their_store_into_a_saved_model_folder(tmp_path, capsys):
    """``keys list --data my-model`` (a careless ``--data``) created ``backlog.sqlite`` inside the model folder and
    exited 0: the model then failed its manifest at every load ("backlog.sqlite is not covered by
    manifest.json"). Now the store is refused there (and in a folder inside it), and the model still loads."""
    pytest.importorskip("fastapi")
    import feedback_nlp as fb
    from conftest import HashEmbedder

    model = _hashed_model(tmp_path / "m")
    before = sorted(p.name for p in model.iterdir())
    assert main(["keys", "create", "--data", str(model), "--name", "ci"]) == 1
    assert main(["keys", "create", "--data", str(model / "keys"), "--name", "ci"]) == 1
    assert "saved feedback_nlp" in capsys.readouterr().err
    assert sorted(p.name for p in model.iterdir()) == before
    fb.TagClassifier.load(model, embedder=HashEmbedder())


def test_keys_list_on_a_mistyped_data_folder_is_refused_not_created(tmp_path, capsys):
    """``keys list --data feedbak-data`` (a typo) created the folder and an empty store, listed nothing and
    exited 0; ``keys revoke`` said only "no key". Now both are usage errors naming the folder, which is not
    created; ``--data`` naming a file said "File exists: keys.csv" and now says it is not a folder."""
    pytest.importorskip("fastapi")
    missing = tmp_path / "feedbak-data"
    assert main(["keys", "list", "--data", str(missing)]) == 2
    assert main(["keys", "revoke", "key_0123", "--data", str(missing)]) == 2
    assert "no key store there" in capsys.readouterr().err and not missing.exists()
    assert main(["keys", "create", "--data", write_file(tmp_path / "keys.csv", "a\n"), "--name", "ci"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_keys_take_json_and_quiet_after_their_name_and_print_one_object(tmp_path, capsys):
    """``keys create ... --json`` was "unrecognized arguments: --json" (every other command takes the flags
    after its name), and ``--json keys list`` printed the key lines and then a JSON object without the keys on
    stdout. Now stdout holds exactly one JSON object with the key, the list or the revoked id; ``-q`` drops
    the note on stderr but still prints the new key (it is shown only once)."""
    pytest.importorskip("fastapi")
    data = str(tmp_path / "d")
    assert main(["keys", "create", "--data", data, "--name", "ci", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["key"].startswith("fnlp_") and created["name"] == "ci" and created["status"] == "ok"
    assert main(["keys", "create", "--data", data, "--name", "bot", "-q"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("fnlp_") and err == ""
    for argv in (["keys", "list", "--data", data, "--json"], ["--json", "keys", "list", "--data", data]):
        assert main(argv) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [k["name"] for k in listed["keys"]] == ["ci", "bot"]
        assert all(k["status"] == "active" and created["key"] not in json.dumps(k) for k in listed["keys"])
    assert main(["keys", "revoke", created["key_id"], "--data", data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revoked"] == created["key_id"]


def test_a_usage_error_of_a_command_names_the_command_in_its_json_object(tmp_path, capsys):
    """``score ... --cutoffs 1,2 --json`` printed ``"command": null``: a script collecting the error objects of
    its runs could not tell which command failed (the contract names it). Now the command whose options were
    wrong is named; a wrong command name still gives null."""
    data = write_file(tmp_path / "s.csv", "id,score\na,1\nb,2\n")
    out = str(tmp_path / "o.csv")
    for argv in (["score", "--in", data, "--out", out, "--cutoffs", "1,2", "--json"],
                 ["score", "--in", data, "--out", out, "--bogus", "--json"], ["--json", "score"]):
        assert main(argv) == 2
        error = json.loads(capsys.readouterr().out)
        assert error["status"] == "error" and error["exit_code"] == 2 and error["command"] == "score"
    assert main(["--json", "scor"]) == 2
    assert json.loads(capsys.readouterr().out)["command"] is None


def test_train_and_eval_on_a_header_only_file_name_the_file(tmp_path, hashed_cli, capsys):
    """A labelled file with a header and no rows said "y is empty: nothing to train on" (the library's name for
    the labels, a word the file never held). Now the file is named and said to have no rows."""
    data = write_file(tmp_path / "labelled.csv", "text,label\n")
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith(f"{data} has no rows") and "y is empty" not in error and not (tmp_path / "m").exists()


def test_eval_with_the_text_column_as_its_labels_is_a_usage_error(tmp_path, capsys, monkeypatch):
    """``eval --label-col text`` (the default --text-col) took every text as its own true tag: accuracy 0 and
    exit 0, after loading the model. ``train`` refused the same mistake; now ``eval`` does too, before it loads
    anything."""
    import feedback_nlp as fb

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(fb.TagClassifier, "load", classmethod(no_load))
    data = write_file(tmp_path / "l.csv", "text,label\nexport fails,bug\ndark mode,request\n")
    assert main(["eval", "--model", "m", "--data", data, "--label-col", "text"]) == 2
    assert "--text-col and --label-col are both 'text'" in capsys.readouterr().err


def test_report_with_both_a_model_and_a_taxonomy_is_a_usage_error(tmp_path, hashed_cli, capsys):
    """``report --model m --taxonomy t.yaml`` tagged with the model and ignored the taxonomy without a word (a
    user who meant zero-shot got another model's tags). Now it is a usage error before any work."""
    model = _hashed_model(tmp_path / "m")
    tax = write_file(tmp_path / "t.json", json.dumps({"tags": [{"id": "bug"}, {"id": "request"}]}))
    out = tmp_path / "rep"
    assert main(["report", "--in", _feedback(tmp_path), "--out", str(out), "--model", str(model), "--taxonomy", tax,
                 "--sentiment-model", "none"]) == 2
    assert "--model and --taxonomy" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz", ".json.gz"])
def test_a_gzipped_output_holds_no_temp_name_and_no_clock(tmp_path, suffix):
    """A ``.gz`` output's gzip header held the hidden temp file's name (``.tmp-k2j8-.tmp-scores.csv.gz``: ``gunzip
    -N`` restored the data under it) and the time of the run, so two runs of the same job never gave the same
    bytes. Now the header holds neither, and reruns are byte-identical."""
    import gzip

    data = write_file(tmp_path / "r.csv", "id,reach,impact,confidence,effort\na,1000,2,0.8,1\nb,100,1,0.5,2\n")
    out = tmp_path / f"scores{suffix}"
    written = []
    for _ in range(2):
        assert main(["score", "--in", data, "--out", str(out), "--framework", "rice", "-q"]) == 0
        written.append(out.read_bytes())
    raw = written[0]
    assert raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0"  # FNAME flag unset, MTIME 0
    assert b".tmp" not in raw[:64] and written[0] == written[1]
    assert "1600" in gzip.decompress(raw).decode()


@pytest.mark.parametrize("flag", ["--json", "-q"])
def test_demo_with_json_or_quiet_prints_no_story_on_stdout(tmp_path, hashed_cli, monkeypatch, capsys, flag):
    """``demo --json`` printed its whole story (sections, tables) on stdout before the JSON object, so
    ``json.loads`` of its stdout failed; ``demo -q`` printed it too. Now stdout holds only the JSON object
    (``--json``) or nothing (``-q``). (The demo itself is stood in for: a real one takes half a minute.)"""
    from feedback_nlp import demo

    def story(out_dir, embedder, n_examples):
        print("== 1. Sample: read, validate, clean ==")
        out_dir.mkdir()
        (out_dir / "tagged.csv").write_text("id,tags\n")

    monkeypatch.setattr(demo, "run", story)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), flag]) == 0
    stdout = capsys.readouterr().out
    if flag == "--json":
        assert json.loads(stdout)["outputs"] == {"folder": str(out)}
    else:
        assert stdout == ""
    assert (out / "tagged.csv").is_file()
    assert main(["demo", "--out", str(tmp_path / "shown")]) == 0  # without the flags the story is shown
    assert capsys.readouterr().out.startswith("== 1. Sample")


def test_train_refuses_labelled_data_inside_the_model_folder_it_replaces(tmp_path, hashed_cli, capsys):
    """``train --data m/labelled.csv --out m`` (the labelled file kept beside the model) retrained, replaced the
    folder ``m`` whole and so deleted ``m/labelled.csv``, exit 0. Now an input (or ``--cache``) inside a folder
    the command replaces is a usage error before any work, and the file is kept; the same holds for the
    ``model`` folder ``themes`` replaces."""
    labelled = "text,label\nexport fails,bug\ncsv broken,bug\nadd dark mode,request\nplease sso,request\n"
    model = tmp_path / "m"
    assert main(["train", "--data", write_file(tmp_path / "l.csv", labelled), "--out", str(model),
                 "--holdout", "0", "-q"]) == 0
    inside = write_file(model / "labelled.csv", labelled)
    assert main(["train", "--data", inside, "--out", str(model), "--holdout", "0"]) == 2
    assert "lies inside the model folder --out" in capsys.readouterr().err
    assert (model / "labelled.csv").read_text() == labelled
    assert main(["train", "--data", inside, "--out", str(tmp_path / "n"), "--cache", str(tmp_path / "n" / "e.sqlite"),
                 "--holdout", "0"]) == 2
    assert main(["themes", "--in", _feedback(tmp_path), "--out", str(tmp_path / "t"), "--min-theme-size", "2",
                 "-q"]) == 0
    kept = write_file(tmp_path / "t" / "model" / "feedback.csv", Path(_feedback(tmp_path)).read_text())
    assert main(["themes", "--in", kept, "--out", str(tmp_path / "t"), "--min-theme-size", "2"]) == 2
    assert Path(kept).is_file()


@pytest.mark.parametrize("command", ["train", "themes", "report", "demo"])
@pytest.mark.parametrize("out", ["", "-"])
def test_an_empty_or_dash_output_folder_is_a_usage_error(tmp_path, hashed_cli, monkeypatch, capsys, command, out):
    """``--out "$OUT"`` with the variable unset wrote the tables (or tried to write the model) into the current
    folder; ``--out -`` made a folder named ``-``. Now both are usage errors naming --out."""
    monkeypatch.chdir(tmp_path)  # without the fix, what the command writes lands here
    data = write_file(tmp_path / "l.csv", "id,text,label\n1,export fails,bug\n")
    inputs = {"train": ["--data", data], "themes": ["--in", data], "report": ["--in", data], "demo": []}[command]
    assert main([command, *inputs, "--out", out]) == 2
    assert capsys.readouterr().err.startswith("error: argument --out: ")


def test_quiet_hides_the_library_warnings_too(tmp_path, hashed_cli, capsys):
    """``train -q`` printed "feedback-nlp: warning: tags that differ only in case …" (and ``eval -q`` its
    unknown-tags warning): the contract of ``--quiet`` is nothing but errors. Now a quiet run prints nothing on
    stderr; without ``-q`` the warning is still shown."""
    data = write_file(tmp_path / "l.csv", "text,label\nexport fails,Bug\ncsv broken,bug\nadd dark mode,request\n"
                                          "please sso,request\nmore,bug\ncrash,Bug\n")
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), "--holdout", "0", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), "--holdout", "0"]) == 0
    assert "warning: tags that differ only in case" in capsys.readouterr().err


def test_multi_label_tags_may_be_separated_by_spaces_and_eval_advises_in_cli_words(tmp_path, hashed_cli, capsys,
                                                                                   monkeypatch):
    """``--sep ' '`` (tags written "bug crash") was refused as "must not be empty"; ``eval``'s hint for joined
    tags said "pass sep=';'", a Python argument. Now a space separates tags, and the hint says ``--sep ';'``."""
    import feedback_nlp as fb
    from conftest import HashEmbedder

    load = fb.TagClassifier.load.__func__  # eval loads with the default embedder; this model was hashed
    monkeypatch.setattr(fb.TagClassifier, "load", classmethod(lambda cls, path, **kw: load(cls, path,
                                                                                         embedder=HashEmbedder())))
    spaced = write_file(tmp_path / "l.csv", "text,label\nexport fails,bug crash\ncsv broken,bug\nadd dark mode,"
                                            "request\nplease sso,request crash\nmore,bug\n")
    model = str(tmp_path / "m")
    assert main(["train", "--data", spaced, "--out", model, "--holdout", "0", "--multi-label", "--sep", " ",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == 3  # bug, crash, request
    joined = write_file(tmp_path / "j.csv", "text,label\nexport fails,bug;crash\nadd dark mode,request\n")
    assert main(["eval", "--model", model, "--data", joined]) == 0
    assert "looks like several tags: pass --sep ';'" in capsys.readouterr().err


def test_report_keeps_the_inputs_own_tags_and_theme_columns(tmp_path, hashed_cli, capsys):
    """An input with its own ``tags`` / ``theme`` / ``confidence`` columns (a file another tool had tagged) had
    them overwritten in items.csv by the report's, without a word: the user's values were gone. Now they are
    kept as ``tags_input``, ``theme_input``, …, as the input's sentiment already was (``sentiment_input``)."""
    import pandas as pd

    rows = "".join(f"{i},export {['csv', 'pdf', 'xls'][i % 3]} fails,USER_TAG,USER_THEME,0.99\n" for i in range(12))
    data = write_file(tmp_path / "tagged.csv", "id,text,tags,theme,confidence\n" + rows)
    out = tmp_path / "rep"
    assert main(["report", "--in", data, "--out", str(out), "--model", str(_hashed_model(tmp_path / "m")),
                 "--min-theme-size", "2", "--sentiment-model", "none", "-q"]) == 0
    items = pd.read_csv(out / "items.csv", dtype=str)
    assert set(items["tags_input"]) == {"USER_TAG"} and set(items["theme_input"]) == {"USER_THEME"}
    assert set(items["confidence_input"]) == {"0.99"} and "USER_TAG" not in set(items["tags"])
