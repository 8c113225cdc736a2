"""Argument types for the command lines (``feedback-nlp``, ``serve``, the Quackback options): one way to parse a
value and name what was wrong with it, so every command refuses ``nan``, ``inf`` and out-of-range values alike."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from .errors import quoted

T = TypeVar("T")


def argument(kind: Callable[[str], T], noun: str, accept: Callable[[T], bool], rule: str) -> Callable[[str], T]:
    """An argparse type: ``kind(text)`` ("expected NOUN" when it fails to parse), kept when ``accept`` holds, else
    ``rule`` formatted with the parsed ``value`` and the quoted ``text``.

    >>> argument(int, "an integer", lambda v: v > 0, "must be > 0, got {value}")("7")
    7
    >>> argument(float, "a number", math.isfinite, "must be finite, got {text}")("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be finite, got 'nan'
    """
    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {quoted(text)}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(rule.format(value=value, text=quoted(text)))
        return value
    return parse


def number(rule: str, accept: Callable[[float], bool]) -> Callable[[str], float]:
    """A float held to ``rule`` (``nan`` passes every comparison-free check, so ``accept`` must compare)."""
    return argument(float, "a number", accept, f"must be {rule}, got {{text}}")


#: A finite number of seconds > 0 (a NaN replay window accepted any timestamp).
positive_seconds = number("a finite number of seconds > 0", lambda v: 0 < v < math.inf)
#: A finite number of seconds >= 0 (``inf`` made the webhook wait for ever).
seconds = number("a finite number >= 0", lambda v: 0 <= v < math.inf)
#: A share or probability in [0, 1] (a NaN duplicate threshold matched nothing).
share = number("a number in [0, 1]", lambda v: 0 <= v <= 1)
#: A TCP port (70000 failed as an 'unexpected OverflowError' from bind()).
port = argument(int, "an integer", lambda v: 0 <= v <= 65535, "must be a TCP port in 0-65535, got {value}")
