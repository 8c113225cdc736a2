"""Hostile and careless inputs, round 17f: the scriptable command line's options and the scoring API that other
apps call (``feedback_nlp.scoring``). Each test failed before its fix."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from feedback_nlp.cli import main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    path = tmp_path / "s.csv"
    path.write_text("id,score\na,9\nb,5\nc,1\n")
    return path


# --- options are never abbreviated -----------------------------------------------------------------------


@pytest.mark.parametrize("options", [["--frame", "moscow"], ["--framework=moscow", "--cut", "8,4,2"],
                                     ["--framework", "moscow", "--fr=rice"], ["--framework", "moscow", "--quie"]])
def test_an_abbreviated_option_of_a_command_is_a_usage_error_naming_the_full_one(scores, options):
    """``--frame moscow`` was read as ``--framework moscow`` (argparse's allow_abbrev): a script meant the day it
    was written changes meaning, or fails as ambiguous, the day an option sharing the prefix is added."""
    code, out, err = _run("score", "--in", str(scores), "--out", str(scores.with_name("o.csv")), *options)
    assert code == 2 and out == ""
    assert "options are not abbreviated" in err and "write --" in err and " in full" in err
    assert not scores.with_name("o.csv").exists()


@pytest.mark.parametrize("argv, full", [(["--jso", "score"], "--json"), (["--vers"], "--version"),
                                        (["--ver"], "--verbose or --version"),
                                        (["keys", "list", "--da", "x"], "--data"),
                                        (["serve", "--mod", "m"], "--model")])
def test_an_abbreviated_option_before_or_after_any_command_is_refused(argv, full):
    """``--vers`` printed the version, ``--jso`` gave JSON, ``serve --mod`` chose the model."""
    code, out, err = _run(*argv)
    assert code == 2 and out == ""
    assert f"write {full} in full" in err


# --- an input without records: the same in every format ---------------------------------------------------


@pytest.mark.parametrize("name, content", [("day.jsonl", b""), ("day.jsonl", b"\n\n"), ("day.ndjson", b""),
                                           ("day.json", b"[]")])
def test_a_json_lines_file_without_records_reads_as_no_rows_whatever_its_bytes(tmp_path, name, content):
    """A 0-byte JSONL file (``jq -c '.[]'`` of a quiet day's ``[]``) exited 1 as "empty (0 bytes): no header and
    no records", while the same file holding blank lines, or the ``[]`` it came from, was 0 rows and exit 0."""
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = _run("score", "--in", str(path), "--out", str(tmp_path / "o.csv"), "--framework", "moscow",
                          "--cutoffs", "8,4,2", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["rows_in"] == 0 and (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("name, content", [("e.csv", b""), ("e.csv", b"\n\n"), ("e.tsv", b""), ("e.json", b""),
                                           ("e.json", b" \n")])
def test_an_empty_file_that_needs_a_header_or_a_document_still_fails_with_exit_1(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = _run("score", "--in", str(path), "--out", str(tmp_path / "o.csv"), "--framework", "moscow",
                        "--cutoffs", "8,4,2")
    assert code == 1 and err.startswith("error: ") and "is empty" in err


# --- empty and unknown option values are usage errors ----------------------------------------------------


@pytest.mark.parametrize("argv", [["score", "--in=", "--out", "{d}/o.csv"],
                                  ["score", "--in", "", "--out", "{d}/o.csv"],
                                  ["dedupe", "--in", "{d}/s.csv", "--against=", "--out", "{d}/o.csv"],
                                  ["train", "--data=", "--out", "{d}/m"]])
def test_an_empty_input_path_is_a_usage_error_not_the_current_folder(scores, argv):
    """``--in "$FILE"`` with FILE unset was read as the current folder: "error: . is a folder, not a file (only a
    Slack export may be given as a folder)", exit 1, as if the data were at fault."""
    code, out, err = _run(*(a.format(d=scores.parent) for a in argv))
    assert code == 2 and out == ""
    assert "must not be empty" in err and "is a folder" not in err


@pytest.mark.parametrize("encoding, message", [("bogus", "unknown encoding 'bogus'"), ("", "unknown encoding ''"),
                                               ("rot13", "is not an encoding of text files")])
def test_an_unknown_encoding_is_a_usage_error_found_before_any_work(scores, encoding, message):
    """``--encoding bogus`` exited 1 ("the data or the run failed"): a script told its data was broken."""
    code, _, err = _run("score", "--in", str(scores), "--out", str(scores.with_name("o.csv")), "--framework", "moscow",
                        "--cutoffs", "8,4,2", "--encoding", encoding)
    assert code == 2 and err.startswith("error: argument --encoding: ") and message in err


def test_a_text_encoding_spelled_any_way_python_knows_still_reads(scores):
    code, _, err = _run("score", "--in", str(scores), "--out", str(scores.with_name("o.csv")), "--framework", "moscow",
                        "--cutoffs", "8,4,2", "--encoding", "UTF8")
    assert (code, err) == (0, "")


# --- the scoring API --------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[1 + 0j], [1 + 2j]])
def test_a_complex_array_is_refused_not_cut_to_its_real_part(values):
    """``rice(np.array([1+2j]), ...)`` scored 1 (numpy's ComplexWarning, the imaginary part dropped); a list of
    complex numbers was already refused."""
    import numpy as np

    from feedback_nlp.errors import InvalidInputError
    from feedback_nlp.scoring import ice, rice

    with pytest.raises(InvalidInputError, match="reach must be numeric; non-numeric values at positions 0"):
        rice(np.array(values), 1, 0.5, 1)
    with pytest.raises(InvalidInputError, match="ease must be numeric"):
        ice(5, 5, np.array(values))


def test_a_moscow_rule_shows_the_score_it_compared_not_a_rounded_one():
    """7.9999999 against a must cutoff of 8 is should, explained as "score 8 >= should cutoff 4"."""
    from feedback_nlp.scoring import moscow

    ex = moscow([7.9999999, 9, 0.1 + 0.2], cutoffs={"must": 8, "should": 4, "could": 0.3}, explain=True)
    assert ex["moscow"].tolist() == ["should", "must", "could"]
    assert ex["rule"].tolist() == ["score 7.9999999 >= should cutoff 4", "score 9 >= must cutoff 8",
                                   "score 0.30000000000000004 >= could cutoff 0.3"]


@pytest.mark.parametrize("extra", [{"wont": 0}, {"won't": 1}, {"Must": 9}])
def test_a_cutoff_of_an_unknown_key_is_refused_not_ignored(extra):
    """``cutoffs={"must": 8, "should": 4, "could": 2, "Must": 9}`` used 8 without a word (the service's model
    already allows only the three keys)."""
    from feedback_nlp.errors import InvalidInputError
    from feedback_nlp.scoring import moscow

    with pytest.raises(InvalidInputError, match=r"cutoffs has unknown key\(s\)"):
        moscow([9, 1], cutoffs={"must": 8, "should": 4, "could": 2, **extra})


def test_a_theme_written_with_stray_spaces_or_another_unicode_form_is_one_theme():
    """" sso " (a spreadsheet cell's stray space) and a decomposed "café" were themes of their own, each with part of
    the volume and revenue, written to the CSV output as two rows that read the same; the same spaces in a
    ``a | sso`` tag cell were stripped."""
    import pandas as pd

    from feedback_nlp.scoring import theme_scores

    df = pd.DataFrame({"theme": ["sso", " sso ", ["sso ", "sso"], "caf\u00e9", "cafe\u0301 ", " outlier "],
                       "account_id": ["a", "b", "c", "d", "e", "f"]})
    out = theme_scores(df, revenue_col=None, time_col=None).set_index("theme")
    assert out["volume"].to_dict() == {"sso": 3, "caf\u00e9": 2}
    assert out.attrs["rows_without_theme"] == 1


def test_score_demand_counts_a_csv_theme_cell_with_spaces_with_its_theme(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("theme,account_id\nsso,a\n sso ,b\nsso | export,c\n")
    code, _, err = _run("score", "--in", str(path), "--out", str(tmp_path / "d.jsonl"), "--revenue-col", "",
                        "--time-col", "")
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert {r["theme"]: r["volume"] for r in rows} == {"sso": 3, "export": 1}


def test_score_demand_json_says_how_many_revenues_were_not_counted(tmp_path):
    """A revenue on a row without an account is not counted (once per account); the CLI said so only in a human line,
    which ``--json`` suppresses, so a script was never told."""
    path = tmp_path / "items.csv"
    path.write_text("theme,account_id,account_revenue\nsso,a,100\nexport,,7\nexport,b,\n")
    code, out, _ = _run("score", "--in", str(path), "--out", str(tmp_path / "d.csv"), "--time-col", "", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["revenue_rows_without_account"] == 1 and summary["rows_without_group"] == 0


def test_a_bad_date_order_variable_is_a_usage_error_for_score_demand(tmp_path, monkeypatch):
    """``score`` (demand) reads FEEDBACK_NLP_DATE_ORDER, but a bad value was exit 1, "the data failed", found only
    when the dates were parsed; the commands that embed named it before any work, with exit 2."""
    path = tmp_path / "items.csv"
    path.write_text("theme,account_id,created_at\nsso,a,03/04/2026\n")
    monkeypatch.setenv("FEEDBACK_NLP_DATE_ORDER", "bogus")
    code, _, err = _run("score", "--in", str(path), "--out", str(tmp_path / "d.csv"), "--revenue-col", "")
    assert code == 2 and "FEEDBACK_NLP_DATE_ORDER" in err and "unset the variable" in err
    code, _, err = _run("score", "--in", str(path), "--out", str(tmp_path / "d.csv"), "--framework", "moscow",
                        "--score-col", "theme", "--cutoffs", "8,4,2")  # moscow reads no dates: not its business
    assert "FEEDBACK_NLP_DATE_ORDER" not in err


def test_a_day_first_date_says_how_to_read_it(tmp_path):
    """``score`` on 13/04/2026 said only "unparseable dates at line 3": the reader's reason (slash dates are read
    month first; FEEDBACK_NLP_DATE_ORDER=dmy reads them day first) was dropped."""
    path = tmp_path / "items.csv"
    path.write_text("theme,account_id,created_at\nsso,a,03/04/2026\nexport,b,13/04/2026\n")
    code, _, err = _run("score", "--in", str(path), "--out", str(tmp_path / "d.csv"), "--revenue-col", "")
    assert code == 1 and "unparseable dates at line 3" in err and "FEEDBACK_NLP_DATE_ORDER=dmy" in err


# --- main() called by other programs ---------------------------------------------------------------------


def test_main_takes_paths_as_subprocess_does(scores):
    """``main(["score", "--in", Path(...), ...])`` raised a bare TypeError ("'PosixPath' object is not
    subscriptable") from argparse, though main() returns an exit code instead of raising."""
    out = scores.with_name("o.csv")
    code, _, err = _run("score", "--in", scores, "--out", out, "--framework", "moscow", "--cutoffs", "8,4,2")  # type: ignore[arg-type]
    assert (code, err) == (0, "") and out.exists()


@pytest.mark.parametrize("argv, message", [("score --in s.csv --out o.csv", "not one string"),
                                           (["score", "--cutoffs", (8, 4, 2)], "argument 2 of main()'s list is tuple"),
                                           (["score", None], "argument 1 of main()'s list is NoneType"),
                                           ([b"score"], "argument 0 of main()'s list is bytes")])
def test_main_refuses_what_is_no_argument_list_with_exit_2(argv, message):
    """One string was split into characters ("invalid choice: 's'"); a tuple, None or bytes item raised TypeError."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 2 and out.getvalue() == "" and err.getvalue().startswith("error: ") and message in err.getvalue()


def test_a_window_too_long_for_pandas_is_named_as_such(scores):
    """``--window 99999999D`` (a duration, beyond pandas' 292 years) said "expected a duration such as 28D, 4W or
    12h"; the option is now checked by theme_scores' own rule."""
    code, _, err = _run("score", "--in", str(scores), "--out", str(scores.with_name("o.csv")), "--window", "99999999D")
    assert code == 2 and "at most 292 years" in err


# --- --help of every command ------------------------------------------------------------------------------


def _leaf_parsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _leaf_parsers(child)


def test_every_command_help_ends_with_examples_that_use_its_options():
    """docs/cli.md: "`feedback-nlp COMMAND --help` describes every option (with its default) and ends with
    examples"; serve, keys (create/list/revoke) and quackback pull/export/retry/serve had none."""
    import shlex

    from feedback_nlp.cli import build_parser

    for p in _leaf_parsers(build_parser()):
        help_text = p.format_help()
        assert "\nexamples:\n" in help_text, p.prog
        examples = help_text.split("\nexamples:\n", 1)[1].strip().splitlines()
        for line in examples:
            words = shlex.split(line)
            assert " ".join(words[:len(p.prog.split())]) == p.prog, line
            if p._subparsers is None:  # a group's examples (keys, quackback) use its commands' options
                assert all(w in p._option_string_actions for w in words if w.startswith("--")), line
