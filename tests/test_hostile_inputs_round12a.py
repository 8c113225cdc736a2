"""Round 12a of hostile and unusual inputs: the command line as a scripted batch user and a careless user run
it (``train``, ``eval``, ``dedupe``, ``themes``, ``report``, ``score``, ``backends``, ``demo``, ``keys``).

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model everywhere: none of them is about embedding quality.
"""

from __future__ import annotations

import json
from pathlib import Path

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
