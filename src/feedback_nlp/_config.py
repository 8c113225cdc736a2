"""Configuration in one place: every ``FEEDBACK_NLP_*`` environment variable and every shared default.

Precedence is the same everywhere: an explicit argument > the environment variable > the default below.
The library only *reads* the environment (it never writes ``os.environ``), and reads it at call time, so a
variable set after import still counts.

| variable | what | default |
|---|---|---|
| ``FEEDBACK_NLP_HOME`` | folder for what is derived per machine (ONNX exports, backend measurements) | ``$XDG_CACHE_HOME/feedback_nlp`` or ``~/.cache/feedback_nlp`` |
| ``FEEDBACK_NLP_CACHE`` | the embedding cache file | ``<home>/embeddings.sqlite`` |
| ``FEEDBACK_NLP_MODEL`` | embedding model folder or name | the bundled all-MiniLM-L6-v2 |
| ``FEEDBACK_NLP_BACKEND`` | numeric backend of the embedder | ``auto`` |
| ``FEEDBACK_NLP_AUTO`` | how ``auto`` decides: ``measured`` (a stored measurement, else rules) or ``rules`` | ``measured`` |
| ``FEEDBACK_NLP_LONG_TEXT`` | texts longer than the model window: ``truncate`` or ``chunk`` | ``truncate`` |
| ``FEEDBACK_NLP_DATA`` | folder of the public benchmark data sets | ``../shared/datasets`` beside the repository |
| ``FEEDBACK_NLP_DATE_ORDER`` | how slash dates such as ``05/03/2026`` are read: ``mdy`` (US) or ``dmy`` (UK, most of the world) | ``mdy`` |

Example:
    >>> from feedback_nlp import _config
    >>> _config.backend("torch")                 # an argument always wins
    'torch'
    >>> _config.DEFAULTS.chunk_size
    5000
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import InvalidInputError, quoted

__all__ = ["DEFAULTS", "VARIABLES", "Defaults", "auto_mode", "backend", "cache_path", "data_dir", "date_order", "env",
           "home", "long_text", "model"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Defaults:
    """Defaults shared by the API, the CLI, the report and the demo (one value each, here)."""

    backend: str = "auto"
    auto: str = "measured"
    # chosen by measurement (docs/benchmarks.md, "Long texts"): on nlbse24 GitHub issues, tagging from the
    # first window scored 0.660 accuracy, the mean of all windows 0.627 at 5.3x the embedding time
    long_text: str = "truncate"
    chunk_size: int = 5000  # rows per chunk of the streaming commands
    dedupe_threshold: float = 0.85  # cosine from which two items are duplicates (API, CLI, report, demo)
    max_batch_tokens: int = 4096  # token budget of one embedding batch
    date_order: str = "mdy"  # slash dates month first, as pandas and US exports (Zendesk, Intercom) write them


DEFAULTS = Defaults()

VARIABLES: dict[str, str] = {
    "FEEDBACK_NLP_HOME": "folder for ONNX exports and backend measurements",
    "FEEDBACK_NLP_CACHE": "embedding cache file",
    "FEEDBACK_NLP_MODEL": "embedding model folder or name",
    "FEEDBACK_NLP_BACKEND": "embedding backend (auto, torch, torch-bf16, torch-int8, onnx-int8)",
    "FEEDBACK_NLP_AUTO": "how backend 'auto' decides: measured or rules",
    "FEEDBACK_NLP_LONG_TEXT": "texts longer than the model window: chunk or truncate",
    "FEEDBACK_NLP_DATA": "folder of the public benchmark data sets",
    "FEEDBACK_NLP_DATE_ORDER": "how slash dates are read: mdy (05/03/2026 is 3 May) or dmy (5 March)",
}

_REPO = Path(__file__).resolve().parent.parent.parent


def env(name: str) -> str | None:
    """The value of ``name`` (one of :data:`VARIABLES`), ``None`` when unset or blank."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a feedback_nlp variable; known: {sorted(VARIABLES)}")
    value = os.environ.get(name, "").strip()
    return value or None


def _pick(argument: T | None, name: str, default: T, parse: Callable[[str], T]) -> T:
    if argument is not None:
        return argument
    raw = env(name)
    return parse(raw) if raw is not None else default


def _choice(name: str, allowed: tuple[str, ...], aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not isinstance(raw, str):  # long_text=5 was an AttributeError ('int' object has no attribute 'strip')
            raise InvalidInputError(f"{name}={raw!r} is not valid: choose one of {list(allowed)} (a string)")
        value = raw.strip().lower()
        value = (aliases or {}).get(value, value)
        if value not in allowed:
            raise InvalidInputError(f"{name}={quoted(raw)} is not valid; choose one of {list(allowed)}")
        return value
    return parse


def _path(argument: str | os.PathLike[str] | None, name: str) -> Path | None:
    value = os.fspath(argument) if argument is not None else env(name)
    return Path(value).expanduser() if value is not None else None


def home(argument: str | os.PathLike[str] | None = None) -> Path:
    """``FEEDBACK_NLP_HOME``, else ``$XDG_CACHE_HOME/feedback_nlp``, else ``~/.cache/feedback_nlp``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec says (``"~/cache"`` written in a unit file made a
    folder named ``~`` in the working directory). Without a home folder (``HOME`` unset and a user that has
    none, as in a container run with an arbitrary uid) the error says to set ``FEEDBACK_NLP_HOME``; it was a
    bare ``RuntimeError``, raised even when ``FEEDBACK_NLP_HOME`` was set.
    """
    chosen = _path(argument, "FEEDBACK_NLP_HOME")
    if chosen is not None:
        return chosen
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "feedback_nlp"
    try:
        return Path.home() / ".cache" / "feedback_nlp"
    except (RuntimeError, KeyError, OSError):
        raise InvalidInputError("no home folder to keep feedback_nlp's per-machine files in (HOME is unset and "
                                "this user has none): set FEEDBACK_NLP_HOME (and FEEDBACK_NLP_CACHE) to a writable "
                                "folder") from None


def cache_path(argument: str | os.PathLike[str] | None = None) -> Path:
    """The embedding cache file: ``FEEDBACK_NLP_CACHE``, else ``embeddings.sqlite`` in :func:`home`."""
    return _path(argument, "FEEDBACK_NLP_CACHE") or home() / "embeddings.sqlite"


def model(argument: str | os.PathLike[str] | None = None) -> str | os.PathLike[str] | None:
    """The embedding model asked for (``None``: the bundled default)."""
    return argument if argument is not None else env("FEEDBACK_NLP_MODEL")


def backend(argument: str | None = None) -> str:
    """The embedding backend asked for; validated by :mod:`feedback_nlp.backends`."""
    return _pick(argument, "FEEDBACK_NLP_BACKEND", DEFAULTS.backend, lambda s: s.strip().lower())


def auto_mode(argument: str | None = None) -> str:
    """``measured`` (use a measurement stored by ``feedback-nlp backends``, else the rules) or ``rules``."""
    parse = _choice("FEEDBACK_NLP_AUTO", ("measured", "rules"), {"measure": "measured"})
    return parse(_pick(argument, "FEEDBACK_NLP_AUTO", DEFAULTS.auto, str))


def long_text(argument: str | None = None) -> str:
    """What the embedder does with texts longer than the model window: ``chunk`` or ``truncate``."""
    parse = _choice("long_text (FEEDBACK_NLP_LONG_TEXT)", ("chunk", "truncate"))
    return parse(_pick(argument, "FEEDBACK_NLP_LONG_TEXT", DEFAULTS.long_text, str))


def date_order(argument: str | None = None) -> str:
    """How a slash date such as ``05/03/2026`` is read: ``mdy`` (3 May, the default) or ``dmy`` (5 March).
    Dotted dates (``05.03.2026``) are always day first."""
    parse = _choice("date_order (FEEDBACK_NLP_DATE_ORDER)", ("mdy", "dmy"),
                    {"us": "mdy", "month-first": "mdy", "uk": "dmy", "eu": "dmy", "day-first": "dmy"})
    return parse(_pick(argument, "FEEDBACK_NLP_DATE_ORDER", DEFAULTS.date_order, str))


def data_dir(argument: str | os.PathLike[str] | None = None) -> Path:
    """``FEEDBACK_NLP_DATA``, else ``../shared/datasets`` next to the repository."""
    return _path(argument, "FEEDBACK_NLP_DATA") or _REPO.parent / "shared" / "datasets"
