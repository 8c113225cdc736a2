"""Round 16d: the CLI as a Unix process in scripts and pipelines (``| head``, ``> /dev/full``, cron's
environment, Ctrl-C and ``kill``), run as a real subprocess where the process boundary is the point.

The subprocess runs the CLI through a small driver that swaps in the tests' HashEmbedder (no model is loaded);
each test names what the command did before the fix.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from _hostile_support import hashed_tag_model
from feedback_nlp.cli import main

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

# The CLI with the tests' HashEmbedder; DRV_MODEL names a tag model folder (saved if missing) that every load returns.
_DRIVER = '''
import os, sys
sys.path.insert(0, os.environ["DRV_TESTS"])
from conftest import HashEmbedder
import feedback_nlp.cli as cli
from feedback_nlp.tagging import TagClassifier

emb = HashEmbedder()
model = os.environ.get("DRV_MODEL")
if model:
    clf = TagClassifier(emb).fit(["export fails", "csv export broken", "add dark mode", "please add sso"],
                                 ["bug", "bug", "request", "request"])
    if not os.path.exists(model):
        clf.save(model)
    TagClassifier.load = classmethod(lambda cls, *a, **k: clf)
cli._embedder = lambda args: emb
sys.exit(cli.main())
'''


def _popen(tmp_path: Path, *args: object, env: dict | None = None, **kwargs) -> subprocess.Popen:
    driver = tmp_path / "drive_cli.py"
    driver.write_text(_DRIVER)
    full_env = {**os.environ, "PYTHONPATH": str(SRC), "DRV_TESTS": str(TESTS), **(env or {})}
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen([sys.executable, str(driver), *map(str, args)], env=full_env, cwd=tmp_path,
                            stderr=subprocess.PIPE, **kwargs)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    path = tmp_path / "scores.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "score": [9.0, 5.0, 1.0]}).to_csv(path, index=False)
    return path


# --- the environment is part of the command line -------------------------------------------------------

@pytest.mark.parametrize(("variable", "command"), [
    ("FEEDBACK_NLP_BACKEND", "tag"), ("FEEDBACK_NLP_AUTO", "tag"), ("FEEDBACK_NLP_LONG_TEXT", "tag"),
    ("FEEDBACK_NLP_DATE_ORDER", "tag")])
def test_a_bad_environment_variable_is_a_usage_error_like_its_option(tmp_path, monkeypatch, capsys, variable, command):
    """``FEEDBACK_NLP_BACKEND=bogus`` exited 1 ("unknown backend 'bogus'", not naming the variable) found after the
    input was read, while ``--backend bogus`` exits 2: the variable stands for the option, so it is a usage error
    (exit 2) named before any work, and nothing is written."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["1", "2"], "text": ["export fails", "add dark mode"]}).to_csv(src, index=False)
    monkeypatch.setenv(variable, "bogus")
    code = main([command, "--model", str(model), "--in", str(src), "--out", str(tmp_path / "t.csv"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2, err
    line = _one_error_line(err)
    assert variable in line and "'bogus'" in line
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "t.csv.parts").exists()


def test_an_explicit_backend_wins_over_a_bad_variable_and_commands_that_do_not_embed_ignore_it(
        tmp_path, monkeypatch, capsys, scores):
    """The precedence rule (an argument beats the variable) holds for the check too; ``score`` reads no backend."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["1", "2"], "text": ["export fails", "add dark mode"]}).to_csv(src, index=False)
    monkeypatch.setenv("FEEDBACK_NLP_BACKEND", "bogus")
    import feedback_nlp._chunks as chunks

    monkeypatch.setitem(chunks._MODELS, f"{model}|False|torch", chunks._MODELS[f"{model}|False|None"])
    code = main(["tag", "--model", str(model), "--in", str(src), "--out", str(tmp_path / "t.csv"), "--no-cache",
                 "--backend", "torch", "--quiet"])
    assert code == 0, capsys.readouterr().err
    code = main(["score", "--in", str(scores), "--out", str(tmp_path / "s.csv"), "--framework", "moscow",
                 "--cutoffs", "8,4,2", "--quiet"])
    assert code == 0, capsys.readouterr().err


# --- standard output on a full disk ----------------------------------------------------------------------

class _Unwritable(io.TextIOBase):
    """A stdout whose every write fails as the OS fails it (unbuffered, as PYTHONUNBUFFERED=1 makes stdout)."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise self.error


@pytest.mark.parametrize("as_json", [False, True])
def test_stdout_on_a_full_disk_is_one_error_line_naming_stdout(tmp_path, scores, capsys, as_json):
    """``> /dev/full`` (a cron job whose log disk is full) under ``--json`` ended in two tracebacks (the error's
    JSON object was printed to the same full stdout), and without it the line said only "No space left on
    device", as if an output file had failed. Now: exit 1, one line naming standard output, the file written."""
    with contextlib.redirect_stdout(_Unwritable(OSError(errno.ENOSPC, "No space left on device"))):
        code = main(["score", "--in", str(scores), "--out", str(tmp_path / "s.csv"), "--framework", "moscow",
                     "--cutoffs", "8,4,2", *(["--json"] if as_json else [])])
    err = capsys.readouterr().err
    assert code == 1, err
    line = _one_error_line(err)
    assert "No space left on device" in line and "standard output" in line
    assert len(pd.read_csv(tmp_path / "s.csv")) == 3


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_json_to_dev_full_as_a_process(tmp_path, scores):
    """The same through a real ``> /dev/full`` in a separate process (the interpreter's own flush at exit included)."""
    with open("/dev/full", "w") as full:
        proc = subprocess.Popen([sys.executable, "-m", "feedback_nlp.cli", "score", "--in", str(scores), "--out",
                                 str(tmp_path / "s.csv"), "--framework", "moscow", "--cutoffs", "8,4,2", "--json"],
                                env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=full, stderr=subprocess.PIPE)
        err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 1, err
    assert "standard output" in _one_error_line(err)


# --- broken pipes ----------------------------------------------------------------------------------------

def test_train_piped_into_head_keeps_the_trained_model(tmp_path, hashed_cli, capsys):
    """``feedback-nlp train ... | head -1`` with stdout unbuffered (PYTHONUNBUFFERED=1, set by most container
    images) printed the held-out report before saving: the pipe closed mid-report and the trained model was
    never written, though the docs say files are renamed into place before anything is printed."""
    data = tmp_path / "labelled.csv"
    texts = [f"export fails {i}" for i in range(20)] + [f"add dark mode {i}" for i in range(20)]
    pd.DataFrame({"text": texts, "label": ["bug"] * 20 + ["request"] * 20}).to_csv(data, index=False)
    with contextlib.redirect_stdout(_Unwritable(BrokenPipeError(errno.EPIPE, "Broken pipe"))):
        code = main(["train", "--data", str(data), "--out", str(tmp_path / "model")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "broken pipe" in err and "Traceback" not in err
    assert (tmp_path / "model" / "manifest.json").is_file()


# --- an export of a day without feedback ------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["[]", "[]\n", "  [ ]  "])
def test_an_empty_json_array_is_an_input_without_rows(tmp_path, monkeypatch, capsys, raw):
    """A JSON export of a day without feedback is ``[]``: ``tag`` refused it as a usage error (exit 2, "column
    'text' (given by --text-col) not found in the first 0 record"), though a header-only CSV or an empty Parquet
    file exits 0 with empty outputs, as docs/batch.md says of an input with no rows at all."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    src = tmp_path / "day.json"
    src.write_text(raw)
    code = main(["tag", "--model", str(model), "--in", str(src), "--out", str(tmp_path / "t.csv"), "--no-cache",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "t.csv")) == 0 and len(pd.read_csv(tmp_path / "t.errors.csv")) == 0


@pytest.mark.parametrize(("framework", "extra", "columns"), [
    ("moscow", ["--cutoffs", "8,4,2"], ["score", "moscow", "moscow_rule"]),
    ("rice", [], ["reach", "impact", "confidence", "effort", "rice"]),
    ("demand", ["--group-col", "theme"], ["theme", "volume"])])
def test_score_of_an_empty_json_array_writes_an_empty_table(tmp_path, capsys, framework, extra, columns):
    """With the column check passing ``[]`` (above), ``score`` then failed as "unexpected KeyError: 'score'"
    (exit 1); it writes the empty table a header-only CSV gives."""
    src = tmp_path / "day.json"
    src.write_text("[]")
    out = tmp_path / "s.csv"
    code = main(["score", "--in", str(src), "--out", str(out), "--framework", framework, *extra, "--quiet"])
    assert code == 0, capsys.readouterr().err
    written = pd.read_csv(out)
    assert len(written) == 0 and set(columns) <= set(written.columns)


# --- usage errors name the right --help ---------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["keys", "list"], ["quackback", "export", "--data", "d", "--out", "o.csv"]])
def test_an_unknown_option_of_a_nested_command_names_its_help(capsys, argv):
    """``feedback-nlp keys list --zzz`` said "see 'feedback-nlp keys --help'", whose page does not list
    ``list``'s options."""
    code = main([*argv, "--zzz"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and f"see 'feedback-nlp {argv[0]} {argv[1]} --help'" in line
