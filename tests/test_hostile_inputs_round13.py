"""Round 13 (lead): odd use found this round. Each test fails without its fix."""

from __future__ import annotations

import argparse
import re

from feedback_nlp.cli import build_parser


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
