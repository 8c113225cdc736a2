"""The CLI's contract (docs/cli.md): exit codes 0/1/2/130, one ``error:`` line and no traceback, every
option validated before any output, --json/--quiet/--version, help texts with examples, broken pipes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import feedback_nlp
from feedback_nlp.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def _subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["Export to CSV fails", "Dark mode please"], "score": [3.0, 1.0],
                  "theme": ["x", "y"], "label": ["bug", "feature"]}).to_csv(path, index=False)
    return path


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_usage_error(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_every_subcommand_rejects_an_unknown_option_with_exit_2(capsys):
    commands = _subcommands()
    assert {"demo", "train", "eval", "tag", "dedupe", "themes", "report", "score", "backends"} <= set(commands)
    for name in commands:
        code, out, err = _run([name, "--no-such-option", "1"], capsys)
        _assert_usage_error(code, err, f"feedback-nlp {name} --help")
        assert out == ""


def bad_arguments(tmp_path, data):
    out = tmp_path / "out"
    return {
        "no command": ([], "required"),
        "unknown command": (["tagg"], "invalid choice"),
        "demo negative examples": (["demo", "--out", out, "--examples", "-1"], "--examples"),
        "train holdout 1.5": (["train", "--data", data, "--out", out, "--holdout", "1.5"], "(0, 1)"),
        "train holdout nan": (["train", "--data", data, "--out", out, "--holdout", "nan"], "finite"),
        "train missing data": (["train", "--data", tmp_path / "missing.csv", "--out", out], "file not found"),
        "train unknown label column": (["train", "--data", data, "--label-col", "nope", "--out", out], "--label-col"),
        "eval no model": (["eval", "--data", data], "--model"),
        "tag chunk size 0": (["tag", "--model", "request-type", "--in", data, "--out", out / "t.csv", "--chunk-size", "0"], ">= 1"),
        "tag chunk size text": (["tag", "--model", "request-type", "--in", data, "--out", out / "t.csv", "--chunk-size", "x"], "integer"),
        "tag unknown output format": (["tag", "--model", "request-type", "--in", data, "--out", out / "t.xlsx"], "format"),
        "tag in == out": (["tag", "--model", "request-type", "--in", data, "--out", data], "same file"),
        "tag errors == out": (["tag", "--model", "request-type", "--in", data, "--out", out / "t.csv",
                               "--errors", out / "t.csv"], "same file"),
        "tag scheduler without dask": (["tag", "--model", "request-type", "--in", data, "--out", out / "t.csv",
                                        "--scheduler", "tcp://x:1"], "--engine dask"),
        "tag unknown text column": (["tag", "--model", "request-type", "--in", data, "--out", out / "t.csv",
                                     "--text-col", "body"], "--text-col"),
        "tag missing model": (["tag", "--model", tmp_path / "nope", "--in", data, "--out", out / "t.csv"], "no tag model"),
        "dedupe threshold 2": (["dedupe", "--in", data, "--out", out / "g.csv", "--threshold", "2"], "(0, 1]"),
        "dedupe k 0": (["dedupe", "--in", data, "--out", out / "g.csv", "--k", "0"], "--k"),
        "themes freq XYZ": (["themes", "--in", data, "--out", out, "--freq", "XYZ"], "'XYZ'"),
        "themes outlier share 3": (["themes", "--in", data, "--out", out, "--max-outlier-share", "3"], "[0, 1]"),
        "report min theme size 0": (["report", "--in", data, "--out", out, "--min-theme-size", "0"], ">= 2"),
        "score cutoffs 1,2": (["score", "--in", data, "--out", out / "s.csv", "--framework", "moscow",
                               "--cutoffs", "1,2"], "MUST,SHOULD,COULD"),
        "score cutoffs increasing": (["score", "--in", data, "--out", out / "s.csv", "--framework", "moscow",
                                      "--cutoffs", "1,2,3"], "decrease"),
        "score cutoffs inf": (["score", "--in", data, "--out", out / "s.csv", "--framework", "moscow",
                               "--cutoffs", "inf,2,1"], "MUST,SHOULD,COULD"),
        "score window xyz": (["score", "--in", data, "--out", out / "s.csv", "--window", "xyz"], "duration"),
        "score window negative": (["score", "--in", data, "--out", out / "s.csv", "--window=-3D"], "positive"),
        "score unknown framework": (["score", "--in", data, "--out", out / "s.csv", "--framework", "wsjf"], "invalid choice"),
        "score in == out": (["score", "--in", data, "--out", data, "--framework", "moscow"], "same file"),
        "backends repeats 0": (["backends", "--repeats", "0"], ">= 1"),
    }


def test_bad_arguments_exit_2_with_one_error_line_and_no_output(tmp_path, data, capsys):
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, (argv, needle) in bad_arguments(tmp_path, data).items():
        code, out, err = _run(argv, capsys)
        assert code == 2, f"{name}: {code} {err}"
        _assert_usage_error(code, err, needle)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, f"{name} wrote something"
    assert pd.read_csv(data)["id"].tolist() == ["a", "b"]  # the input survived every attempt


def test_bad_arguments_with_json_print_a_json_error(tmp_path, data, capsys):
    code, out, err = _run(["score", "--in", data, "--out", tmp_path / "s.csv", "--framework", "moscow",
                           "--cutoffs", "1,2", "--json"], capsys)
    assert code == 2 and err.startswith("error: ")
    payload = json.loads(out)
    assert payload["status"] == "error" and payload["exit_code"] == 2 and "cutoffs" in payload["error"]


CORE = ("demo", "train", "eval", "tag", "dedupe", "themes", "report", "score", "backends", "quackback")


def test_every_option_has_help_and_every_command_has_examples():
    for name, parser in _subcommands().items():
        if name not in CORE:
            continue  # serve and keys: the service's own tests
        assert parser.description, name
        assert "examples:" in (parser.epilog or "") and f"feedback-nlp {name}" in parser.epilog, name
        for action in parser._actions:
            if action.option_strings:
                assert action.help and action.help.strip(), f"{name} {action.option_strings} has no help"


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == feedback_nlp.__version__
    assert main(["score", "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--cutoffs" in text and "(default:" in text and "28D" in text


def test_python_dash_m_runs_the_cli(tmp_path):
    # `python -m feedback_nlp` where the console script is not on PATH (a venv not activated, a notebook)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "feedback_nlp", "--version"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == feedback_nlp.__version__, done.stderr
    bad = subprocess.run([sys.executable, "-m", "feedback_nlp", "tag", "--no-such-option"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_data_errors_exit_1(tmp_path, capsys):
    src = tmp_path / "opps.csv"
    pd.DataFrame({"reach": [1, 2], "impact": [1, 1], "confidence": [0.5, 0.5], "effort": [1, float("inf")]}).to_csv(src, index=False)
    code, out, err = _run(["score", "--in", src, "--out", tmp_path / "r.csv", "--framework", "rice"], capsys)
    assert code == 1 and err.count("error:") == 1 and "effort" in err and "Traceback" not in err
    assert not (tmp_path / "r.csv").exists()


def test_non_writable_out_is_an_os_error_before_any_work(tmp_path, data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(["score", "--in", data, "--out", blocker / "s.csv", "--framework", "moscow",
                         "--cutoffs", "3,2,1"], capsys)
    assert code == 1 and err.startswith("error: not a folder") and str(blocker) in err and "Traceback" not in err
    code, _, err = _run(["score", "--in", data, "--out", tmp_path, "--framework", "moscow", "--cutoffs", "3,2,1"], capsys)
    assert code == 2 and "format" in err  # a folder given as the output file


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder_is_refused(tmp_path, data, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = _run(["score", "--in", data, "--out", ro / "s.csv", "--framework", "moscow",
                             "--cutoffs", "3,2,1"], capsys)
    finally:
        ro.chmod(0o700)
    assert code == 1 and "permission denied" in err


def test_permission_error_mid_run_is_one_line(tmp_path, data, capsys, monkeypatch):
    import feedback_nlp.records as records

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "s.csv"))

    monkeypatch.setattr(records, "csv_ready", denied)
    code, _, err = _run(["score", "--in", data, "--out", tmp_path / "s.csv", "--framework", "moscow",
                         "--cutoffs", "3,2,1"], capsys)
    assert code == 1 and err == f"error: Permission denied: {tmp_path / 's.csv'}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no temp file left behind


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, data, capsys, monkeypatch):
    import feedback_nlp.scoring as scoring

    def boom(*a, **k):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(scoring, "moscow", boom)
    argv = ["score", "--in", data, "--out", tmp_path / "s.csv", "--framework", "moscow", "--cutoffs", "3,2,1"]
    code, _, err = _run(argv, capsys)
    assert code == 1 and err.count("\n") == 1 and "kaboom second line" in err and "--debug" in err
    code, _, err = _run([*argv, "--debug"], capsys)
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_keyboard_interrupt_exits_130(tmp_path, data, capsys, monkeypatch):
    import feedback_nlp.scoring as scoring

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring, "moscow", interrupted)
    code, _, err = _run(["score", "--in", data, "--out", tmp_path / "s.csv", "--framework", "moscow",
                         "--cutoffs", "3,2,1"], capsys)
    assert code == 130 and err == "error: interrupted\n"
    assert not (tmp_path / "s.csv").exists()


def test_json_and_quiet(tmp_path, data, capsys):
    argv = ["score", "--in", data, "--out", tmp_path / "s.csv", "--framework", "moscow", "--cutoffs", "3,2,1"]
    code, out, err = _run([*argv, "--json"], capsys)
    payload = json.loads(out)
    assert code == 0 and payload["status"] == "ok" and payload["command"] == "score"
    assert payload["rows_in"] == payload["rows_out"] == 2 and payload["outputs"] == {"output": str(tmp_path / "s.csv")}
    assert payload["version"] == feedback_nlp.__version__ and payload["seconds"] >= 0
    code, out, err = _run(["--json", *argv], capsys)  # before the command name too
    assert code == 0 and json.loads(out)["rows_out"] == 2
    code, out, err = _run([*argv, "--quiet"], capsys)
    assert code == 0 and out == "" and err == ""


def _cli(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "feedback_nlp.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_broken_pipe_is_not_a_traceback(tmp_path):
    src = tmp_path / "big.csv"
    pd.DataFrame({"score": range(3000)}).to_csv(src, index=False)
    proc = _cli("score", "--in", src, "--out", tmp_path / "s.csv", "--framework", "moscow", "--json")
    proc.stdout.close()  # `| head -0`: the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err and err.count("error:") == 1 and "broken pipe" in err
    assert len(pd.read_csv(tmp_path / "s.csv")) == 3000  # the file output is complete


def test_broken_pipe_after_the_first_line(tmp_path):
    src = tmp_path / "big.csv"
    pd.DataFrame({"score": range(3000)}).to_csv(src, index=False)
    proc = _cli("score", "--in", src, "--out", tmp_path / "s.csv", "--framework", "moscow")
    first = proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert first and "Traceback" not in err and err.count("error:") <= 1


def test_outputs_that_would_overwrite_an_input_are_refused(tmp_path, data, capsys):
    out = tmp_path / "th"
    out.mkdir()
    inside = out / "assignments.csv"
    inside.write_bytes(data.read_bytes())
    code, _, err = _run(["themes", "--in", inside, "--out", out], capsys)
    _assert_usage_error(code, err, "same file")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    code, _, err = _run(["dedupe", "--in", link, "--against", data, "--out", tmp_path / "g.csv"], capsys)
    assert code != 2 or "same file" not in err  # two inputs may be one file
    code, _, err = _run(["dedupe", "--in", data, "--against", tmp_path / "b.csv", "--out", tmp_path / "b.csv"], capsys)
    _assert_usage_error(code, err, "file not found")
    (tmp_path / "b.csv").write_bytes(data.read_bytes())
    code, _, err = _run(["dedupe", "--in", data, "--against", tmp_path / "b.csv", "--out", tmp_path / "b.csv"], capsys)
    _assert_usage_error(code, err, "--against and --out are the same file")
    code, _, err = _run(["score", "--in", link, "--out", data, "--framework", "moscow", "--cutoffs", "3,2,1"], capsys)
    _assert_usage_error(code, err, "same file")
    assert pd.read_csv(data)["id"].tolist() == ["a", "b"] and inside.read_bytes() == data.read_bytes()


def test_nul_bytes_and_odd_paths_are_usage_errors(tmp_path, capsys):
    code, _, err = _run(["score", "--in", "a\x00b.csv", "--out", tmp_path / "s.csv"], capsys)
    _assert_usage_error(code, err, "--in")


def test_a_model_never_replaces_a_folder_that_is_not_a_model(tmp_path, data, capsys):
    precious = tmp_path / "projects"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    code, _, err = _run(["train", "--data", data, "--out", precious], capsys)
    assert code == 1 and "not a saved model" in err and str(precious) in err
    assert (precious / "thesis.tex").read_text() == "years of work"
    themes_out = tmp_path / "th"
    (themes_out / "model").mkdir(parents=True)
    (themes_out / "model" / "notes.txt").write_text("mine")
    code, _, err = _run(["themes", "--in", data, "--out", themes_out], capsys)
    assert code == 1 and "not a saved model" in err and (themes_out / "model" / "notes.txt").exists()


def test_output_set_keeps_nothing_on_failure_and_replaces_a_saved_folder_whole(tmp_path):
    from feedback_nlp._atomic import OutputSet

    target = tmp_path / "m"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / "old.bin").write_text("old")
    with pytest.raises(RuntimeError, match="half-way"), OutputSet() as outs:
        (outs.folder(target) / "config.json").write_text('{"new": 1}')
        (outs.file(tmp_path / "deep" / "er" / "a.csv")).write_text("x")
        raise RuntimeError("failed half-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"] and (target / "old.bin").exists()
    with OutputSet() as outs:
        (outs.folder(target) / "config.json").write_text('{"new": 1}')
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp or old folder left


def test_devices_are_neither_read_nor_replaced(tmp_path, data, capsys):
    import stat

    code, _, err = _run(["score", "--in", "/dev/zero", "--out", tmp_path / "s.csv"], capsys)
    _assert_usage_error(code, err, "not a regular file")
    code, _, err = _run(["score", "--in", data, "--out", "/dev/null", "--framework", "moscow", "--cutoffs", "3,2,1"],
                        capsys)
    assert code in (1, 2) and err.count("error:") == 1 and "Traceback" not in err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    code, _, err = _run(["score", "--in", data, "--out", fifo, "--framework", "moscow", "--cutoffs", "3,2,1"], capsys)
    assert code == 1 and "not a regular file" in err and stat.S_ISFIFO(os.stat(fifo).st_mode)
