"""Round 13 (lead): odd use found this round. Each test fails without its fix."""

from __future__ import annotations

import argparse
import re
import time

import numpy as np
import pytest

from feedback_nlp.cli import build_parser
from feedback_nlp.themes import central_title, clean_title


def _parsers(parser: argparse.ArgumentParser, name: str = "feedback-nlp"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_states_its_default_once_and_never_as_none() -> None:
    """--help said "(default: request-type) (default: None)", "(default: None)" for required options, and so on:
    the formatter appended argparse's default to a help that already named it."""
    seen = 0
    for name, parser in _parsers(build_parser()):
        text = parser.format_help()
        # one entry per option: its lines up to the next option
        for entry in re.split(r"\n  (?=-)", text):
            flat = " ".join(entry.split())
            assert flat.count("(default") <= 1, f"{name}: {flat}"
            assert "(default: None)" not in flat, f"{name}: {flat}"
        seen += 1
    assert seen > 10


@pytest.mark.parametrize(("text", "title"), [
    (">:( The app closes everytime i take a picture", "The app closes everytime i take a picture"),
    (":D love this app so much", "Love this app so much"),
    ("- Export fails on long rows", "Export fails on long rows"),
    ("> quoted reply about billing", "Quoted reply about billing"),
    ("Love it XD", "Love it"),
    ("Works great :P", "Works great"),
    ("Sync broken :-( XD", "Sync broken"),
    ("<3 this app", "<3 this app"),  # the heart is the verb
    ("#1 issue: sync is slow", "#1 issue: sync is slow"),
    ("C++ SDK crashes", "C++ SDK crashes"),
])
def test_a_theme_title_drops_emoticons_and_bullets_at_its_ends(text, title) -> None:
    """App reviews gave the theme title '>:( The app closes everytime i take a picture': symbols and emoticons at
    the start were kept, and emoticons with a letter (':D', 'XD', ':P') at either end too."""
    assert clean_title(text) == title


def test_emoticons_do_not_make_a_title_backtrack_exponentially() -> None:
    """A pattern for emoticons that two alternatives could match took 6 s on 22 ':(' and doubled with each one
    more; 60 of them must be instant."""
    text = "a " + ":( :D " * 30 + "b"
    t = time.perf_counter()
    clean_title(text)
    assert time.perf_counter() - t < 5


def test_a_title_that_continues_a_thought_is_passed_over() -> None:
    """'Then you have to go back to search, and zoom in …' was a theme's title: a member that opens with a
    conjunction reads as the middle of a review. Another central member is preferred; it is still taken when it
    is the only one."""
    texts = ["Then you have to go back to search and zoom in again", "Search loses the map zoom every time"]
    assert central_title(texts, np.array([0.90, 0.86])) == "Search loses the map zoom every time"
    assert central_title(texts[:1], np.array([0.9])) == "Then you have to go back to search and zoom in again"


def test_score_writes_the_numbers_it_scored_as_numbers_in_typed_outputs(tmp_path) -> None:
    """`score` read the file as text (so that ids like "007" stay), and Parquet and JSON outputs then held
    "reach": "1" as a string. The columns the framework scored are numbers there now; other columns and any CSV
    output keep the cells as written."""
    import json

    import pandas as pd

    from feedback_nlp.cli import main

    src = tmp_path / "opps.csv"
    src.write_text("id,name,reach,impact,confidence,effort\n007,export,100,2,0.8,1.50\n008,sso,40,3,0.5,2\n")
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "r.parquet"), "--framework", "rice", "-q"]) == 0
    got = pd.read_parquet(tmp_path / "r.parquet")
    assert got["reach"].dtype.kind in "if" and got["effort"].dtype.kind == "f"
    assert got["id"].tolist() == ["007", "008"] and got["rice"].tolist() == pytest.approx([100 * 2 * 0.8 / 1.5, 30.0])
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "r.jsonl"), "--framework", "ice", "-q",
                 "--confidence-col", "impact", "--ease-col", "impact"]) == 0
    first = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert first["impact"] == 3 and first["id"] == "008" and first["reach"] == "40"  # reach is not an ICE input
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "r.csv"), "--framework", "rice", "-q"]) == 0
    assert "007,export,100,2,0.8,1.50," in (tmp_path / "r.csv").read_text()
