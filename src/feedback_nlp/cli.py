"""The ``feedback-nlp`` command line: demo, train, eval, tag, dedupe, themes, report, score, backends.

Each sub-command is a thin shell over the Python API, with one contract (see docs/cli.md):

- exit codes: 0 success, 1 the data or the run failed, 2 usage error (bad option, missing file, paths that
  collide), 130 interrupted, 143 terminated (SIGTERM);
- an error is one ``error: ...`` line on stderr, never a traceback (unless ``--debug``);
- ``--json`` prints one JSON object on stdout (counts, outputs, timings, model), ``--quiet`` prints nothing
  but errors, ``--version`` prints the version;
- every option is validated before any work starts, and outputs appear whole or not at all.

Adding a command: write ``cmd_NAME(args) -> dict`` (the ``--json`` summary) and a parser builder decorated
with :func:`command`; nothing else changes::

    @command
    def _hello_parser(sub):
        p = add_command(sub, "hello", "say hello", "Prints a greeting.", ["feedback-nlp hello --name Ada"])
        p.add_argument("--name", default="world", help="who to greet")
        p.set_defaults(func=lambda args: {"greeted": args.name})
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ._atomic import (
    OutputSet,
    distinct_paths,
    not_a_saved_folder,
    outside_saved_folders,
    replaceable_folder,
    writable_folder,
    writable_target,
)
from ._config import DEFAULTS
from .backends import BACKENDS
from .errors import (
    ColumnError,
    FeedbackNLPError,
    InvalidInputError,
    ModelNotFoundError,
    UnknownTagError,
    UsageError,
    quoted,
    quoted_cell,
    quoted_list,
)

__all__ = ["add_command", "build_parser", "command", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
PROG = "feedback-nlp"

# --- the command registry -------------------------------------------------------------------------

SubParsers = Any  # argparse's _SubParsersAction is private
_BUILDERS: list[Callable[[SubParsers], None]] = []


def command(builder: Callable[[SubParsers], None]) -> Callable[[SubParsers], None]:
    """Register a parser builder; commands appear in ``--help`` in registration order."""
    _BUILDERS.append(builder)
    return builder


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and examples keep their line breaks; every option's help shows its default.

    The default is added only where the help does not already say it and there is one to show: argparse
    alone wrote ``--model ... (default: request-type) (default: None)`` and ``--head ... logreg (default) ...
    (default: None)``, a help that contradicted itself, and ``(default: None)`` beside every required option."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        nothing = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
        if "default" in text or nothing or action.required:  # identity: 0 and 0.0 are defaults worth showing
            return action.help
        return super()._get_help_string(action)


class _UsageExit(Exception):
    """argparse found a usage error; main() turns it into one ``error:`` line and exit code 2. ``command``: the
    command whose parser found it (None for the top level), for the ``--json`` error object."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class _Parser(argparse.ArgumentParser):
    """No abbreviated options (``allow_abbrev=False``, also for every sub-command's parser, which argparse makes of
    this class): ``--mod`` read as ``--model`` made a script change meaning, or fail, the day an option sharing the
    prefix was added. An abbreviation is refused naming the options it could stand for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def _parse_optional(self, arg_string: str) -> Any:  # argparse classifies each argument with it
        if self._subparsers is None:  # a command's own parser (a parent sees the command's options as unknown)
            self.refuse_abbreviation(arg_string)
        return super()._parse_optional(arg_string)

    def refuse_abbreviation(self, text: str) -> None:
        """A usage error when ``text`` (``--mod`` or ``--mod=x``) is the start of options of this parser."""
        prefix = text.split("=", 1)[0]
        if prefix.startswith("--") and prefix != "--" and prefix not in self._option_string_actions:
            full = sorted(o for o in self._option_string_actions if o.startswith(prefix))
            if full:
                self.error(f"unrecognized argument {prefix}: options are not abbreviated (a script must not change "
                           f"meaning when an option is added); write {' or '.join(full)} in full")

    def error(self, message: str) -> Any:  # argparse would print the usage block and exit
        words = self.prog.split()  # "feedback-nlp score", "feedback-nlp keys list"
        raise _UsageExit(f"{message} (see '{self.prog} --help')", words[1] if len(words) > 1 else None)


def _common_flags(suppress: bool) -> argparse.ArgumentParser:
    """--json/--quiet/--debug/--verbose, accepted before or after the command name."""
    default: Any = argparse.SUPPRESS if suppress else False
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=default,
                   help="print one JSON object on stdout: counts, outputs, timings, model (see docs/cli.md)")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="print nothing but errors")
    p.add_argument("--debug", action="store_true", default=default, help="show the traceback of an error")
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="log progress details")
    return p


def add_command(sub: SubParsers, name: str, summary: str, description: str,
                examples: Sequence[str]) -> argparse.ArgumentParser:
    """A sub-command parser with the common flags, a description and an ``examples:`` epilog."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return sub.add_parser(name, help=summary, description=description, epilog=epilog,
                          formatter_class=_Formatter, parents=[_common_flags(suppress=True)])


# --- argument types: every value is checked before any work starts ---------------------------------

def _number(text: str, kind: type = float) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {quoted(text)}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {quoted(text)}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def theme_size(text: str) -> int:
    """A theme has at least 2 items (ThemeModel's rule), checked with the other arguments: exit 2, not 1."""
    value = _number(text, int)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 (a theme groups at least two items), got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def seed(text: str) -> int:
    """A random seed numpy accepts: 0 to 2**32 - 1 (a larger one failed only after the held-out run)."""
    value = non_negative_int(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be at most {2**32 - 1}, got {value}")
    return value


def unit_interval(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def similarity(text: str) -> float:
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a cosine similarity in (0, 1], got {text}")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600}


def duration(text: str) -> float:
    """Seconds from ``600``, ``90s``, ``10m`` or ``1.5h``: positive, finite and at most a week."""
    t = text.strip().lower()
    unit = next((u for u in sorted(_DURATION_UNITS, key=len, reverse=True) if t.endswith(u)), "")
    try:
        value = float(t[: len(t) - len(unit)]) * _DURATION_UNITS.get(unit, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 600, 90s, 10m or 1.5h; got {quoted(text)}") from None
    if not math.isfinite(value) or not 0 < value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be a duration above 0 and at most a week (such as 10m), got {quoted(text)}")
    return value


def holdout_share(text: str) -> float:
    value = _number(text)
    if value != 0 and not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1) such as 0.2, or 0 for no held-out set; got {text}")
    return value


def cutoffs(text: str) -> dict[str, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected three numbers MUST,SHOULD,COULD such as 8,4,2; got {quoted(text)}")
    if not values[0] >= values[1] >= values[2]:
        raise argparse.ArgumentTypeError(f"cutoffs must decrease: MUST >= SHOULD >= COULD; got {quoted(text)}")
    return dict(zip(("must", "should", "could"), values))


def time_window(text: str) -> str:
    """A growth window as theme_scores takes it, checked by its rule (99999999D was "expected a duration", and 28 is
    28 nanoseconds to pandas)."""
    from .scoring import _window

    try:
        _window(text)
    except FeedbackNLPError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("window ", "", 1)) from None
    return text


def period(text: str) -> str:
    from .themes._model import check_freq

    try:
        return check_freq(text)
    except FeedbackNLPError:
        raise argparse.ArgumentTypeError(f"expected a period such as D, W, M, Q or Y (pandas frequency); got {quoted(text)}") from None


_NO_STDIO = ("'-' (standard {0}) is not supported: a job fingerprints its input to resume after a crash and writes its "
             "output atomically, so save the data to a file and pass its path")


def input_file(text: str) -> str:
    if not text:  # an unset variable in a script: Path("") is the current folder, read as "'.' is a folder" (exit 1)
        raise argparse.ArgumentTypeError("must not be empty (an unset variable?): give the input's path")
    if text == "-":
        raise argparse.ArgumentTypeError(_NO_STDIO.format("input"))
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {text}")
    if not (path.is_file() or path.is_dir()):  # /dev/zero or a pipe would be read forever
        raise argparse.ArgumentTypeError(f"{text} is not a regular file (a device or pipe)")
    return text  # its format (by extension and content) is the reader's to judge


input_path = input_file


def text_encoding(text: str) -> str:
    """An ``--encoding`` that names a codec of text files: an unknown one failed the run (exit 1), not the command
    line (exit 2)."""
    from .connectors._tables import text_codec

    try:
        text_codec(text)
    except FeedbackNLPError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text  # as given: the resume fingerprint compares it with the codec the file is read with


def output_file(text: str) -> str:
    from .records import table_format

    if text == "-":
        raise argparse.ArgumentTypeError(_NO_STDIO.format("output"))
    try:
        table_format(text)
    except FeedbackNLPError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def output_folder(text: str) -> str:
    """An output folder: ``--out ""`` (an unset variable in a script) wrote into the current folder, and
    ``--out -`` made a folder named ``-``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (it would write into the current folder)")
    if text == "-":
        raise argparse.ArgumentTypeError("'-' (standard output) is not supported: this command writes a folder of "
                                         "files; give the folder's path")
    return text


def separator(text: str) -> str:
    """A tag separator: any text but the empty one (``--sep ' '`` for tags written "bug crash" was refused as
    "must not be empty")."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


# --- shared helpers -------------------------------------------------------------------------------

class _UI:
    """Human output: stdout unless --quiet or --json (then stdout carries only the JSON object)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet, self.json = bool(getattr(args, "quiet", False)), bool(getattr(args, "json", False))
        self.progress = sys.stderr.isatty() and not self.quiet

    def say(self, *lines: str) -> None:
        if not (self.quiet or self.json):
            with _writing_stdout():
                print(*lines, sep="\n")

    def warn(self, line: str) -> None:
        if not self.quiet:
            print(f"warning: {line}", file=sys.stderr)

    def table(self, df: Any, max_rows: int = 15) -> None:
        import pandas as pd

        with pd.option_context("display.max_colwidth", 60, "display.width", 160, "display.max_columns", 20):
            self.say(df.head(max_rows).to_string(index=False))


def _ui(args: argparse.Namespace) -> _UI:
    return _UI(args)


def check_paths(inputs: dict[str, str | None], outputs: dict[str, str | None], folders: Sequence[str] = ()) -> None:
    """Refuse before any work when two of the paths are one file (symlinks, relative paths and hard links
    included), or when an output cannot be written. ``folders`` names the keys of outputs that are folders."""
    clashes = [(a, b) for a, b in distinct_paths(**inputs, **outputs) if a in outputs or b in outputs]
    if clashes:  # two inputs may well be one file; an output may never be another path's file
        a, b = clashes[0]
        given = {**inputs, **outputs}
        raise UsageError(f"{a} and {b} are the same file ({given[a]} and {given[b]}); "
                         "choose a different output path so that nothing is overwritten")
    for role, path in outputs.items():
        if path is not None:
            (writable_folder if role in folders else writable_target)(path)


def outside_replaced_folder(folder: str | os.PathLike, paths: dict[str, str | None], what: str) -> None:
    """Refuse a path (an input, the cache) inside a folder the command replaces whole, such as a model folder: the
    old folder is deleted with everything in it (``train --data m/labelled.csv --out m`` deleted the labelled
    file, exit 0), and a file created there during the run stops the replacement at the very end."""
    root = Path(folder).resolve()
    for option, path in paths.items():
        if path and root in Path(path).resolve().parents:
            raise UsageError(f"{option} {path} lies inside {what} {folder}, which this command replaces whole (the "
                             "old folder is deleted with everything in it): move the file out of it first")


def require_columns(path: str, columns: dict[str, str | None], args: argparse.Namespace | None = None,
                    optional: Sequence[str] = ()) -> None:
    """Refuse before any work when a column named by an option is not in the file's header (the
    vendor export formats map their own columns, so they are not checked here). The error for an option of
    ``optional`` (one that ``''`` turns off) says so."""
    from .records import VENDOR_FORMATS, iter_table_chunks, sniff_format

    fmt, encoding = getattr(args, "format", "auto"), getattr(args, "encoding", None)
    if fmt in VENDOR_FORMATS:
        return
    # JSON records need not all carry every field: a first record without "text" (a deleted message) is a
    # rejected row, not a missing column. Look where the reader looks, its first chunk (the union of its keys).
    json_like = (sniff_format(path) if fmt == "auto" else fmt) in ("jsonl", "json")
    n = (getattr(args, "chunk_size", None) or 10_000) if json_like else 1
    first = next(iter(iter_table_chunks(path, n, format=fmt, encoding=encoding)), None)
    if first is None or ("_error" in first.columns and first["_error"].notna().all()):
        return  # an empty file, or a broken first record: the reader reports it as a rejected row
    if json_like and first.empty:  # "[]": records carry their own keys, and there are none to look at. It was
        return  # "column 'text' not found in the first 0 record" (exit 2) for an export of a day without feedback
    have = [c for c in first.columns if c not in ("_row", "_error", "_raw")]
    for option, name in columns.items():
        if name is not None and name not in have:
            where = (f"the first {len(first)} record{'s' if len(first) > 1 else ''} of {path}" if json_like
                     else path)
            same = [c for c in have if str(c).casefold() == name.casefold()]  # "Text" for "text": say so
            hint = f"; {quoted(same[0])} differs only in case: pass {option} {same[0]}" if same else ""
            if option in optional and not same:  # score demand's revenue: the file has none, which is allowed
                hint = f"; pass {option} '' to go without it"
            raise UsageError(f"column {quoted(name)} (given by {option}) not found in {where}; "
                             f"available: {quoted_list(have)}{hint}")


def require_period_fits(path: str, freq: str, args: argparse.Namespace,
                        columns: tuple[str, ...] = ("created_at",)) -> None:
    """Refuse a ``--freq`` that cuts the input's dates into more periods than the trend tables allow, before any
    embedding: the trend code refuses it too, but only after the minutes of work that come first. Fine periods
    (``min``, ``h``) are one cause; a single typo or placeholder date (``9999-12-31``, ``0202-01-01``) under the
    default weeks is the other, so the date columns of the whole file are read once (no text is cleaned).
    """
    import pandas as pd

    from .records import iter_table_chunks, parse_timestamp
    from .themes._model import bounded_period_range

    low = high = None
    for chunk in iter_table_chunks(path, 50_000, format=getattr(args, "format", "auto"),
                                   encoding=getattr(args, "encoding", None)):
        for col in (c for c in columns if c in chunk.columns):
            values = chunk[col]
            ts = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
            rest = values[ts.isna() & values.notna()]  # epochs, dates in other notations: as the reader reads them
            others = pd.to_datetime(pd.Series([_parsed_or_none(parse_timestamp, v) for v in rest], dtype=object),
                                    utc=True)
            ts = pd.concat([ts.dropna(), others.dropna()])
            if len(ts):
                low = ts.min() if low is None else min(low, ts.min())
                high = ts.max() if high is None else max(high, ts.max())
    if low is not None and high is not None:
        try:
            bounded_period_range(low.tz_convert(None).to_period(freq), high.tz_convert(None).to_period(freq), freq)
        except InvalidInputError as exc:
            odd = high - low > pd.Timedelta(days=365 * 100)  # feedback spans years, not a century
            where = f" (the dates of {path} run from {low.date()} to {high.date()}: a typo or a placeholder date?)"
            raise UsageError(f"--freq {freq}: {exc}{where if odd and 'placeholder' not in str(exc) else ''}") from None


def _parsed_or_none(parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        return parse(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _embedder(args: argparse.Namespace) -> Any:
    from .embedding import Embedder

    cache = None if getattr(args, "no_cache", False) else (args.cache or True)
    return Embedder(args.embedding_model, cache=cache, show_progress=_ui(args).progress,
                    backend=getattr(args, "backend", None))


def _model_id(obj: Any) -> str | None:
    return getattr(obj, "model_id", None)


def _add_embedding_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embedding-model", default=None, help="embedding model folder or name (default: bundled MiniLM)")
    p.add_argument("--backend", default=None, choices=list(BACKENDS),
                   help="embedding backend (default: auto, the fastest measured on this machine)")
    p.add_argument("--cache", default=None, help="embedding cache file (default: $FEEDBACK_NLP_CACHE, else $FEEDBACK_NLP_HOME/embeddings.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """How the --in file is read: its format and text encoding (see docs/ingest.md)."""
    from .records import FORMATS

    p.add_argument("--format", default="auto", choices=list(FORMATS),
                   help="input format (default: auto, by extension and content); slack/zendesk/intercom/survey/google_play/github/app_store read exports")
    p.add_argument("--encoding", default=None, type=text_encoding,
                   help="text encoding of a CSV/JSON input (default: UTF-8, BOM honoured; e.g. cp1252, latin-1, utf-16)")


def _add_stream_args(p: argparse.ArgumentParser) -> None:
    """Columns and chunking of a file read through the streaming path, plus the embedding options."""
    _add_input_args(p)
    p.add_argument("--text-col", default="text", help="column holding the feedback text")
    p.add_argument("--id-col", default="id", help="column holding a unique id per row")
    p.add_argument("--chunk-size", type=positive_int, default=DEFAULTS.chunk_size, help="rows read and embedded at a time")
    _add_embedding_args(p)


def _add_raw_csv(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw-csv", action="store_true",
                   help="write CSV cells as they are; by default a cell starting with = + - @ tab or CR is "
                        "prefixed with ' so that spreadsheets do not run it as a formula")


# --- demo -----------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> dict:
    import io

    from . import demo

    ui = _ui(args)
    emb = _embedder(args)
    # the demo tells its story on stdout; under --json or --quiet it is not shown, like every command's tables
    # (it was printed before the JSON object, which no reader of stdout could then parse)
    with contextlib.redirect_stdout(io.StringIO()) if ui.quiet or ui.json else contextlib.nullcontext():
        demo.run(out_dir=Path(args.out), embedder=emb, n_examples=args.examples)
    return {"outputs": {"folder": str(args.out)}, "embedding_model": _model_id(emb)}


@command
def _demo_parser(sub: SubParsers) -> None:
    p = add_command(sub, "demo", "run the library end to end on the bundled sample",
                    "Cleans, embeds, tags, dedupes, themes and scores the bundled sample (3,000 items) and "
                    "writes its tables and report under --out.",
                    ["feedback-nlp demo", "feedback-nlp demo --out /tmp/demo --examples 2"])
    p.add_argument("--out", type=output_folder, default="demo_out", help="folder for the demo outputs")
    p.add_argument("--examples", type=non_negative_int, default=4, help="items whose nearest neighbours are shown")
    _add_embedding_args(p)
    p.set_defaults(func=cmd_demo, check=_check_demo)


def _check_demo(args: argparse.Namespace) -> None:
    not_a_saved_folder(args.out)
    check_paths({}, {"--out": args.out}, folders=["--out"])


# --- train / eval / tag ---------------------------------------------------------------------------

def _labelled(path: str, text_col: str, label_col: str | None, sep: str | None,
              args: argparse.Namespace | None = None) -> tuple[list[str], Any, _Where]:
    """The texts and labels (None for zero-shot) of a labelled file, and how to name its rows."""
    from .records import read_table, sniff_format

    fmt = getattr(args, "format", "auto")
    df = read_table(path, format=fmt, encoding=getattr(args, "encoding", None))
    # A missing cell would become the text "nan" or "None" and be trained on (or, as a true label, be scored
    # as a wrong prediction): refuse the file naming its lines, not positions in a list the user never saw.
    where = _Where(path, df, sniff_format(path) if fmt == "auto" else fmt)
    if label_col is not None and len(df) == 0:  # was "y is empty", the library's word for the labels
        raise InvalidInputError(f"{path} has no rows (only a header, or nothing): no labelled rows to learn from or "
                                "to measure against")
    where.refuse([i for i, v in enumerate(df[text_col]) if _blank(v)], f"no text in column {quoted(text_col)}")
    texts = df[text_col].astype(str).tolist()
    if label_col is None:  # zero-shot: the rows are an unlabelled backlog
        return texts, None, where
    where.refuse([i for i, v in enumerate(df[label_col]) if _blank(v)], f"no label in column {quoted(label_col)}")
    # a list cell (Parquet, JSON) holds its tags already: as a plain list, each tag checked as a text cell's are
    labels = [[str(x).strip() for x in v if not _blank(x) and str(x).strip()] if _is_list_cell(v) else v
              for v in df[label_col].tolist()]
    where.refuse([i for i, v in enumerate(labels) if v == []], f"no tag in column {quoted(label_col)} (an empty list)")
    if sep:  # a cell of text holds tags joined by sep
        labels = [v if isinstance(v, list) else [x.strip() for x in str(v).split(sep) if x.strip()] for v in labels]
        where.refuse([i for i, v in enumerate(labels) if not v], f"no tag in column {quoted(label_col)} (only {quoted(sep)})")
    return texts, labels, where


def _is_list_cell(value: Any) -> bool:
    """A cell that holds several values: a list of a Parquet or JSON column (NumPy array, list or tuple). Its
    text ("['billing' 'login']") split on a separator was one made-up tag."""
    import numpy as np

    return isinstance(value, (list, tuple, np.ndarray))


def _blank(value: Any) -> bool:
    """A missing or blank cell (None, NaN, "", spaces); lists and other values are the reader's to judge."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


class _Where:
    """Names rows of a read table by their line (CSV/JSONL) or record number (Parquet/JSON/exports)."""

    def __init__(self, path: str, df: Any, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.rows = df["_row"].tolist() if "_row" in df.columns else list(range(1, len(df) + 1))

    def name(self, positions: list[int]) -> str:
        """``lines 2, 5`` (CSV/JSONL) or ``record 3`` (Parquet/JSON) for 0-based positions in the table."""
        kind = "line" if self.fmt in ("csv", "tsv", "jsonl") else "record"
        kind += "s" if len(positions) > 1 else ""
        more = f" and {len(positions) - 10} more" if len(positions) > 10 else ""
        return f"{kind} {', '.join(str(self.rows[i]) for i in positions[:10] if 0 <= i < len(self.rows))}{more}"

    def refuse(self, positions: list[int], what: str) -> None:
        if positions:
            raise InvalidInputError(f"{self.path}: {what} at {self.name(positions)}; fill or remove these rows")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@contextlib.contextmanager
def _empty_once_cleaned_named(texts: list[str], embedder: Any, where: _Where, text_col: str) -> Iterator[None]:
    """Name the file's lines of texts that are empty once cleaned (only HTML markup, a quoted reply or a
    signature): the embedder refused them as "empty text at positions [2]", counted from 0 in a list the user
    never saw (and, with a held-out share, in its training part), for a cell that is not empty in the file."""
    try:
        yield
    except InvalidInputError as exc:
        if not str(exc).startswith("empty text at positions"):
            raise
        from .embedding import _blank

        prepare = getattr(embedder, "prepare", None)
        empty = []
        for i, text in enumerate(texts):  # one at a time: prepare refuses a list holding an empty one
            try:
                if prepare is None or _blank(prepare([text])[0]):
                    empty.append(i)
            except InvalidInputError:
                empty.append(i)
        if prepare is None or not empty:
            raise
        where.refuse(empty, f"no text left in column {quoted(text_col)} once cleaned (only HTML markup, a quoted "
                            "reply or a signature)")


def _refuse_separator_in_tags(labels: list[Any], where: _Where, args: argparse.Namespace) -> None:
    """A tag holding '|' would be ambiguous in every CSV output (a row's tags are joined with '|'): refused
    before any training, naming the tag and its lines."""
    def tags(v: Any) -> list[str]:  # as the model reads them: stripped ("bug\t" from a pasted cell is "bug")
        return [str(x).strip() for x in v] if isinstance(v, list) else [str(v).strip()]

    bad = [i for i, v in enumerate(labels) if any("|" in t for t in tags(v))]
    if bad:
        tag = next(t for t in tags(labels[bad[0]]) if "|" in t)
        hint = " (or --multi-label if the cell holds several tags joined by '|')" if not args.multi_label else ""
        where.refuse(bad, f"the tag {quoted(tag)} holds '|', the separator of a row's tags in CSV outputs, so "
                          f"its rows would read back as other tags; rename the tag{hint}")
    # as a taxonomy's tag ids: a newline or tab in a tag (a quoted CSV cell) breaks every line-based output
    bad = [i for i, v in enumerate(labels) if any(_CONTROL.search(t) for t in tags(v))]
    if bad:
        tag = next(t for t in tags(labels[bad[0]]) if _CONTROL.search(t))
        where.refuse(bad, f"the tag {quoted(tag)} holds a control character (newline, tab…)")


def _one_unicode_form(labels: list[Any], taxonomy: Any, ui: _UI) -> list[Any]:
    """Labels in one Unicode form: "café" typed with a composed é (NFC) and pasted from a Mac with e + accent
    (NFD) look the same but were two tags. Each label is read in the taxonomy's form of it, else NFC; a
    warning says how many were rewritten."""
    import unicodedata

    known = {unicodedata.normalize("NFC", t): t for t in (taxonomy.ids if taxonomy is not None else [])}
    changed = 0

    def one(tag: Any) -> Any:
        nonlocal changed
        if not isinstance(tag, str):
            return tag
        nfc = unicodedata.normalize("NFC", tag)
        form = known.get(nfc, nfc)
        changed += form != tag
        return form

    out = [[one(t) for t in v] if isinstance(v, list) else one(v) for v in labels]
    if changed:
        ui.warn(f"{changed} labels differ from the same tag elsewhere only in their Unicode form (composed vs "
                "decomposed accents); they are read as " + ("the taxonomy writes the tag" if taxonomy is not None
                                                            else "composed (NFC)") + ", as one tag")
    return out


def cmd_train(args: argparse.Namespace) -> dict:
    from .tagging import TagClassifier
    from .taxonomy import Taxonomy

    ui = _ui(args)
    sep = args.sep if args.multi_label else None
    taxonomy = Taxonomy.load(args.taxonomy) if args.taxonomy else None
    texts, labels, where = _labelled(args.data, args.text_col, None if args.zero_shot else args.label_col, sep, args)
    if labels is not None:
        _refuse_separator_in_tags(labels, where, args)
        labels = _one_unicode_form(labels, taxonomy, ui)
    emb = _embedder(args)

    def make() -> TagClassifier:
        return TagClassifier(emb, taxonomy, multi_label=True if args.multi_label else None, head=_train_head(args),
                             min_confidence=args.min_confidence, zero_shot=args.zero_shot,
                             self_train=args.self_train, time_budget=args.time_budget or 600.0,
                             taxonomy_examples=args.taxonomy_examples, lexical=not args.no_lexical,
                             keep_base=args.keep_base, finetune_calibration=args.calibration,
                             random_state=args.random_state, show_progress=ui.progress)

    holdout = args.holdout if args.holdout > 0 and not args.zero_shot else None
    if holdout and not ui.quiet:
        print(f"evaluating on a held-out {holdout:.0%} before training on everything…", file=sys.stderr)
    # fit(holdout=...) trains a copy on the rest, evaluates it on the stratified held-out share (the card's
    # metrics_), then trains on every row: the same figures a model saved from Python gets.
    try:
        with _empty_once_cleaned_named(texts, emb, where, args.text_col):
            clf = make().fit(texts if args.self_train or not args.zero_shot else None, labels, holdout=holdout)
    except UnknownTagError as exc:
        raise _unknown_tags_at_lines(exc, where) from exc
    metrics = dict(clf.metrics_)
    # saved before anything is printed: `train ... | head -3` (stdout unbuffered, as PYTHONUNBUFFERED=1 in most
    # container images makes it) closed the pipe while the held-out report was printed, and the trained model
    # was never saved
    with OutputSet() as outs:
        clf.save(outs.folder(args.out), metrics=metrics, description=args.description or "",
                 training_data=f"{len(texts)} rows from `{Path(args.data).name}` (text column `{args.text_col}`, "
                               f"label column `{args.label_col}`)")
    if clf.holdout_report_ is not None:
        ui.say(clf.holdout_report_.to_markdown(max_tags=15))
    selection = clf.__dict__.get("head_selection_")
    if selection:
        ui.say(f"head=auto chose {selection['chosen']} in {selection['total_s']} s (budget {selection['budget_s']:g} s): "
               + "; ".join(f"{r['head']} {r['status']}" + (f" {r['cv_macro_f1']:.3f}" if r["cv_macro_f1"] is not None else "")
                           for r in selection["candidates"]))
    ui.say(f"saved model to {args.out} ({len(clf.classes_)} tags, {'multi-label' if clf.multi_label_ else 'multi-class'})")
    return {"rows_in": len(texts), "outputs": {"model": str(args.out)}, "tags": len(clf.classes_),
            "metrics": metrics, "embedding_model": _model_id(emb),
            **({"head_selection": selection} if selection else {})}


def _unknown_tags_at_lines(exc: UnknownTagError, where: _Where) -> UnknownTagError:
    """The error with its rows named as the file's lines: "in rows [2, 4]" counts from 0 in the list of texts."""
    return UnknownTagError(re.sub(r"in rows \[([\d, ]+)\]", lambda m: "at " + where.name(
        [int(i) for i in m.group(1).split(",") if i.strip()]), str(exc)))


def _train_head(args: argparse.Namespace) -> str:
    """--time-budget alone means --head auto; no --head at all means logreg."""
    return args.head or ("auto" if args.time_budget is not None else "logreg")


def _check_train(args: argparse.Namespace) -> None:
    if args.self_train and not args.zero_shot:
        raise UsageError("--self-train learns from unlabelled rows: use it with --zero-shot and --taxonomy")
    if args.taxonomy_examples and (not args.taxonomy or args.zero_shot or args.multi_label):
        raise UsageError("--taxonomy-examples learns from the --taxonomy's tag names and examples: it needs "
                         "--taxonomy and labels (not --zero-shot), multi-class (not --multi-label)")
    if args.time_budget is not None and (args.zero_shot or args.head not in (None, "auto")):
        raise UsageError("--time-budget is the budget of --head auto (which measures the heads and picks one); "
                         "drop it or use --head auto" + (" without --zero-shot" if args.zero_shot else ""))
    if args.zero_shot and not args.taxonomy:  # was found only after reading the data, and exited 1
        raise UsageError("--zero-shot tags by the taxonomy's tag names and descriptions: give --taxonomy FILE")
    if args.keep_base and _train_head(args) == "logreg":  # a frozen head reads the base vectors already
        raise UsageError("--keep-base adds the frozen base model's vectors beside a tuned encoder's: use it with "
                         "--head finetune, contrastive or auto")
    if not args.zero_shot and args.text_col == args.label_col:  # the model would learn to echo its input
        raise UsageError(f"--text-col and --label-col are both {args.text_col!r}: the labels must be another column")
    check_paths({"--data": args.data}, {"--out": args.out}, folders=["--out"])
    replaceable_folder(args.out)
    outside_replaced_folder(args.out, {"--data": args.data, "--taxonomy": args.taxonomy,
                                       "--cache": None if args.no_cache else args.cache}, "the model folder --out")
    columns = {"--text-col": args.text_col} if args.zero_shot else {"--text-col": args.text_col, "--label-col": args.label_col}
    require_columns(args.data, columns, args)


@command
def _train_parser(sub: SubParsers) -> None:
    p = add_command(sub, "train", "train a tag model on labelled feedback",
                    "Trains a tag model on a labelled file, measures it on a held-out share first (the figures "
                    "go into the model card, README.md) and saves it to the --out folder.",
                    ["feedback-nlp train --data labelled.csv --label-col request_type --out my-model",
                     "feedback-nlp train --data l.csv --label-col areas --multi-label --sep '|' --holdout 0.25 --out m",
                     "feedback-nlp train --data labelled.csv --label-col request_type --head auto --time-budget 10m --out m"])
    p.add_argument("--data", required=True, type=input_file, help="labelled CSV/TSV/Parquet/JSONL file")
    p.add_argument("--text-col", default="text", help="column holding the text")
    p.add_argument("--label-col", default="label", help="column holding the tag (or tags, with --multi-label)")
    p.add_argument("--multi-label", action="store_true", help="labels hold several tags joined by --sep")
    p.add_argument("--sep", default="|", type=separator, help="separator of tags with --multi-label")
    p.add_argument("--taxonomy", default=None, type=input_path, help="taxonomy YAML/JSON (labels are checked against it)")
    p.add_argument("--zero-shot", action="store_true", help="no labels: tag by similarity to the taxonomy")
    p.add_argument("--taxonomy-examples", action="store_true",
                   help="with --taxonomy: its tag names, descriptions and examples become extra labelled rows "
                        "(helps with few labels per tag; multi-class)")
    p.add_argument("--self-train", action="store_true",
                   help="with --zero-shot: learn from the --data rows as an unlabelled backlog (pseudo-labels)")
    p.add_argument("--no-lexical", action="store_true",
                   help="embeddings only: no word TF-IDF channel beside the head (by default it is fitted and "
                        "kept only where it helps out of fold)")
    p.add_argument("--head", choices=["logreg", "finetune", "contrastive", "auto"], default=None,
                   help="logreg (default): a classifier on frozen embeddings; finetune: also tune the encoder "
                        "(slower); contrastive: tune it with a supervised contrastive loss too (few labels per tag); "
                        "auto: measure them by cross-validation within --time-budget and keep the best")
    p.add_argument("--keep-base", action="store_true",
                   help="with --head finetune/contrastive: the head also reads the frozen base model's vectors "
                        "(a little more accurate with few labels; predictions embed each text twice)")
    p.add_argument("--calibration", choices=["crossfit", "in_sample"], default="crossfit",
                   help="with --head finetune/contrastive: crossfit (default) calibrates the probabilities on rows "
                        "scored by two more encoders, each tuned on the other half of the rows (about twice the "
                        "training time); in_sample skips them (faster, over-confident probabilities)")
    p.add_argument("--time-budget", type=duration, default=None, metavar="DURATION",
                   help="wall-clock budget of --head auto for measuring and training, e.g. 600, 90s, 10m, 1h "
                        "(default 10m; given alone, it implies --head auto). The comparison goes into the model card")
    p.add_argument("--min-confidence", type=unit_interval, default=0.0,
                   help="below this confidence an item gets needs_review")
    p.add_argument("--holdout", type=holdout_share, default=0.2,
                   help="share in (0, 1) held out to measure the card's metrics (0: none)")
    p.add_argument("--random-state", type=seed, default=0, help="seed of the split and the training")
    p.add_argument("--description", default="", help="one line for the model card")
    p.add_argument("--out", type=output_folder, required=True, help="model folder (written whole, or not at all)")
    _add_input_args(p)
    _add_embedding_args(p)
    p.set_defaults(func=cmd_train, check=_check_train)


def cmd_eval(args: argparse.Namespace) -> dict:
    from .tagging import TagClassifier

    clf = TagClassifier.load(args.model)
    if args.multi_label and not clf.multi_label_:  # the flag train took: welcome here, but it must agree
        raise UsageError(f"--multi-label: the model {args.model} is multi-class (one tag per row); drop the flag")
    sep = args.sep if clf.multi_label_ else None
    texts, labels, where = _labelled(args.data, args.text_col, args.label_col, sep, args)
    with warnings.catch_warnings(record=True) as caught, \
            _empty_once_cleaned_named(texts, clf.embedder_, where, args.text_col):
        warnings.simplefilter("always")
        try:
            report = clf.evaluate(texts, labels)
        except UnknownTagError as exc:  # a model with a taxonomy refuses tags outside it
            raise _unknown_tags_at_lines(exc, where) from exc
    for w in caught:  # the library's advice in this command's words: "pass sep=';'" is --sep here
        warnings.warn(re.sub(r"pass sep=('[^']*')", r"pass --sep \1", str(w.message)), w.category, stacklevel=1)
    _ui(args).say(report.to_markdown())
    return {**report.to_dict(), "rows_in": len(texts), "model": str(args.model),
            "embedding_model": _model_id(clf.embedder_)}


def _check_eval(args: argparse.Namespace) -> None:
    if args.text_col == args.label_col:  # each text was its own "true tag": every row a miss, and exit 0
        raise UsageError(f"--text-col and --label-col are both {args.text_col!r}: the true tags must be another column")
    require_columns(args.data, {"--text-col": args.text_col, "--label-col": args.label_col}, args)


@command
def _eval_parser(sub: SubParsers) -> None:
    p = add_command(sub, "eval", "evaluate a tag model on labelled data",
                    "Tags a labelled file with a saved model and prints accuracy, micro/macro F1 and per-tag "
                    "figures (with --json: the whole report as one JSON object).",
                    ["feedback-nlp eval --model my-model --data labelled.csv --label-col request_type",
                     "feedback-nlp eval --model request-type --data l.csv --label-col request_type --json"])
    p.add_argument("--model", required=True, help="model folder or bundled name (e.g. request-type)")
    p.add_argument("--data", required=True, type=input_file, help="labelled CSV/TSV/Parquet/JSONL file")
    p.add_argument("--text-col", default="text", help="column holding the text")
    p.add_argument("--label-col", default="label", help="column holding the true tag(s)")
    p.add_argument("--sep", default="|", type=separator, help="separator of tags for a multi-label model")
    p.add_argument("--multi-label", action="store_true",
                   help="labels hold several tags joined by --sep; the model decides this, so the flag (as given "
                        "to train) is only checked against it")
    _add_input_args(p)
    p.set_defaults(func=cmd_eval, check=_check_eval)


def _tag_errors_path(args: argparse.Namespace) -> str:
    from .batch import default_errors_path

    return str(args.errors or default_errors_path(Path(args.out)))


def _check_tag(args: argparse.Namespace) -> None:
    if args.scheduler and args.engine != "dask":
        raise UsageError("--scheduler needs --engine dask")
    check_paths({"--in": args.input}, {"--out": args.out, "--errors": _tag_errors_path(args)})
    require_columns(args.input, {"--text-col": args.text_col, "--id-col": args.id_col}, args)


def cmd_tag(args: argparse.Namespace) -> dict:
    from .batch import tag_file

    ui = _ui(args)
    cache = False if args.no_cache else (args.cache or True)
    summary = tag_file(args.model, args.input, args.out, errors_path=args.errors, chunk_size=args.chunk_size,
                       resume=args.resume, text_col=args.text_col, id_col=args.id_col, cache=cache,
                       engine=args.engine, scheduler=args.scheduler, backend=args.backend,
                       progress=not ui.quiet, raw_csv=args.raw_csv, format=args.format, encoding=args.encoding)
    ui.say(str(summary), f"output: {summary.output}", f"errors: {summary.errors}")
    if summary.rows_in and not summary.rows_out:
        # a job that tagged nothing exited 0, and a scheduled pipeline went on with an empty output: every row
        # rejected is a wrong column, encoding or export, as in report and themes. The files stay written.
        raise InvalidInputError(f"{args.input}: all {summary.rows_in} rows were rejected, none tagged; "
                                f"{summary.errors} gives each row's reason")
    return {"rows_in": summary.rows_in, "rows_out": summary.rows_out, "rows_rejected": summary.rows_error,
            "chunks": summary.chunks, "chunks_reused": summary.chunks_reused,
            "outputs": {"output": summary.output, "errors": summary.errors},
            "model": str(args.model), "embedding_model": summary.embedder}


@command
def _tag_parser(sub: SubParsers) -> None:
    p = add_command(sub, "tag", "tag a backlog file (streaming, resumable)",
                    "Tags every row of a CSV/TSV/Parquet/JSONL file chunk by chunk. Rejected rows (empty, "
                    "binary, too long, missing id) go to the errors file with a reason; rows in = tagged + "
                    "errors. A killed run is finished with --resume; a second run on the same output is "
                    "refused while the first holds its lock.",
                    ["feedback-nlp tag --model request-type --in backlog.csv --out tagged.parquet --resume",
                     "feedback-nlp tag --model my-model --in b.jsonl --out t.csv --errors rejected.csv --json"])
    p.add_argument("--model", required=True, help="model folder or bundled name (e.g. request-type)")
    p.add_argument("--in", dest="input", required=True, type=input_file, help="backlog CSV/TSV/Parquet/JSONL file")
    p.add_argument("--out", required=True, type=output_file, help="tagged output (.csv, .tsv, .parquet, .jsonl or .json: one JSON array)")
    p.add_argument("--errors", default=None, type=output_file, help="rejected rows (default: <out>.errors.<ext>)")
    p.add_argument("--chunk-size", type=positive_int, default=DEFAULTS.chunk_size, help="rows per chunk (bounds memory)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run of the same job, reusing its chunks")
    p.add_argument("--text-col", default="text", help="column holding the feedback text")
    p.add_argument("--id-col", default="id", help="column holding a unique id per row")
    p.add_argument("--engine", choices=["local", "dask"], default="local", help="run chunks here or on a Dask cluster")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--backend", default=None, choices=list(BACKENDS),
                   help="embedding backend (default: auto, resolved once and used by every worker)")
    p.add_argument("--cache", default=None, help="embedding cache file (default: $FEEDBACK_NLP_CACHE, else $FEEDBACK_NLP_HOME/embeddings.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    _add_input_args(p)
    _add_raw_csv(p)
    p.set_defaults(func=cmd_tag, check=_check_tag)


# --- dedupe / themes ------------------------------------------------------------------------------

def _stream(path: str, args: argparse.Namespace, emb: Any, needed: bool = True) -> tuple[Any, Any, Any]:
    """Validate, clean and embed a file chunk by chunk (the batch path), reporting rejected rows; ``needed``:
    the command cannot work without at least one usable row."""
    from .batch import embed_file

    ui = _ui(args)
    records, vectors, rejected = embed_file(path, emb, text_col=args.text_col, id_col=args.id_col,
                                            chunk_size=args.chunk_size, progress=ui.progress,
                                            format=args.format, encoding=args.encoding)
    if needed and len(records) == 0:  # the command fails and writes no errors file: say why here
        from .records import no_usable_rows

        raise no_usable_rows(path, rejected)
    if len(rejected):
        ui.warn(f"{len(rejected)} rows of {path} rejected (see the errors file)")
    return records, vectors, rejected


def _dedupe_errors_path(args: argparse.Namespace) -> str:
    """``groups.csv`` -> ``groups.errors.csv``, always CSV; the whole stem is kept (``run.v1.csv`` and
    ``run.v2.csv`` wrote one ``run.errors.csv``, each run's errors over the other's)."""
    from .batch import default_errors_path

    errors = default_errors_path(Path(args.out)).name  # run.v2.parquet -> run.v2.errors.parquet
    return str(Path(args.out).with_name(errors[:errors.rindex(".errors")] + ".errors.csv"))


def _check_dedupe(args: argparse.Namespace) -> None:
    check_paths({"--in": args.input, "--against": args.against},
                {"--out": args.out, "errors file": _dedupe_errors_path(args)})
    for path in (args.input, args.against):
        if path is not None:
            require_columns(path, {"--text-col": args.text_col, "--id-col": args.id_col}, args)


def cmd_dedupe(args: argparse.Namespace) -> dict:
    import pandas as pd

    from .dedupe import Deduper
    from .records import write_table

    ui = _ui(args)
    emb = _embedder(args)
    records, vectors, rejected = _stream(args.input, args, emb, needed=not args.against)  # matches of none: none
    errors, backlog_counts = rejected, {}
    if args.against:
        # the same file on both sides: read it once, and leave each item out of its own matches (it would be
        # its own best duplicate, score 1.0)
        same = os.path.samefile(args.input, args.against)
        backlog, bvec, brejected = (records, vectors, rejected.iloc[:0]) if same else _stream(args.against, args, emb)
        d = Deduper(emb, threshold=args.threshold).fit(backlog, embeddings=bvec)
        # the texts too: find() then adds its bonus for shared specific words (identifiers, error strings)
        # an item whose id is also in the backlog (a new export overlapping the last one) is that backlog item:
        # matching itself at 1.0 pushed a real duplicate out of its k
        res = d.find(records["text"].tolist(), embeddings=vectors, k=min(args.k, len(backlog)), min_score=args.threshold,
                     exclude_ids=records["id"].tolist())
        res.insert(0, "query_id", records["id"].to_numpy()[res["query"].to_numpy()] if len(res) else [])
        out = res.drop(columns="query").rename(columns={"id": "match_id", "text": "match_text"})
        if not same:  # the backlog's rejects go to the errors file too (they were dropped), marked by file
            backlog_counts = {"backlog_rows_in": len(backlog) + len(brejected), "backlog_rows_rejected": len(brejected)}
            if len(brejected):
                errors = pd.concat([rejected.assign(source_file=str(args.input)),
                                    brejected.assign(source_file=str(args.against))], ignore_index=True)
    else:
        out = Deduper(emb, threshold=args.threshold).fit(records, embeddings=vectors).groups()
    errors_path = _dedupe_errors_path(args)
    with OutputSet() as outs:
        write_table(out, outs.file(args.out), raw_csv=args.raw_csv)
        if len(errors):
            write_table(errors, outs.file(errors_path), raw_csv=args.raw_csv)
        else:  # an earlier run's errors would pass for this run's
            outs.stale(errors_path)
    ui.table(out)
    what = "matches" if args.against else f"members in {out['group'].nunique() if len(out) else 0} duplicate groups"
    backlog_line = (f"; backlog: {backlog_counts['backlog_rows_in']} = used: {len(backlog)} + errors: "
                    f"{backlog_counts['backlog_rows_rejected']}" if backlog_counts else "")
    ui.say(f"\nwrote {len(out)} {what} to {args.out}; rows in: {len(records) + len(rejected)} = "
           f"used: {len(records)} + errors: {len(rejected)}{backlog_line}")
    outputs = {"output": str(args.out), **({"errors": errors_path} if len(errors) else {})}
    return {"rows_in": len(records) + len(rejected), "rows_out": len(out), "rows_rejected": len(rejected),
            **backlog_counts, "outputs": outputs, "embedding_model": _model_id(emb)}


@command
def _dedupe_parser(sub: SubParsers) -> None:
    p = add_command(sub, "dedupe", "duplicate groups in a file, or matches of a file against a backlog",
                    "Without --against: groups of near-duplicates inside --in (one representative each). With "
                    "--against: the closest backlog items of every new item (an item whose id is also in the "
                    "backlog is not matched with itself). Rejected rows go to "
                    "<out>.errors.csv.",
                    ["feedback-nlp dedupe --in backlog.csv --out groups.csv --threshold 0.9",
                     "feedback-nlp dedupe --in new.csv --against backlog.parquet --out matches.csv --k 3"])
    p.add_argument("--in", dest="input", required=True, type=input_file, help="feedback CSV/TSV/Parquet/JSONL file")
    p.add_argument("--against", default=None, type=input_file, help="backlog to match against")
    p.add_argument("--out", required=True, type=output_file, help="output file (.csv, .tsv, .parquet, .jsonl or .json: one JSON array)")
    p.add_argument("--threshold", type=similarity, default=DEFAULTS.dedupe_threshold, help="cosine similarity that counts as a duplicate")
    p.add_argument("--k", type=positive_int, default=5, help="matches per item with --against")
    _add_stream_args(p)
    _add_raw_csv(p)
    p.set_defaults(func=cmd_dedupe, check=_check_dedupe)


THEME_FILES = ("themes.csv", "assignments.csv", "trends.csv", "errors.csv", "model")


def _check_themes(args: argparse.Namespace) -> None:
    out = Path(args.out)
    not_a_saved_folder(out)
    check_paths({"--in": args.input}, {"--out": args.out, **{f: str(out / f) for f in THEME_FILES}},
                folders=["--out", "model"])
    replaceable_folder(out / "model")
    outside_replaced_folder(out / "model", {"--in": args.input, "--cache": None if args.no_cache else args.cache},
                            "the theme model folder")
    require_columns(args.input, {"--text-col": args.text_col, "--id-col": args.id_col}, args)
    require_period_fits(args.input, args.freq, args)


def cmd_themes(args: argparse.Namespace) -> dict:
    from .records import write_table
    from .themes import ThemeModel

    ui = _ui(args)
    emb = _embedder(args)
    r, vectors, rejected = _stream(args.input, args, emb)
    tm = ThemeModel(emb, min_theme_size=args.min_theme_size, max_outlier_share=args.max_outlier_share)
    tm.fit(r["text"], timestamps=r.get("created_at"), accounts=r.get("account_id"), embeddings=vectors)
    out = Path(args.out)
    themes = tm.themes_.assign(keywords=tm.themes_["keywords"].map(", ".join),
                               representatives=tm.themes_["representatives"].map(" || ".join))
    assignments = tm.assignments(ids=r["id"])
    # computed before anything is written; a created_at column without a date in it gives none (was an error)
    trends = tm.trends(args.freq) if "created_at" in r and r["created_at"].notna().any() else None
    written = {"themes": out / "themes.csv", "assignments": out / "assignments.csv"}
    with OutputSet() as outs:
        write_table(themes, outs.file(written["themes"]), raw_csv=args.raw_csv)
        write_table(assignments, outs.file(written["assignments"]), raw_csv=args.raw_csv)
        if trends is not None:
            written["trends"] = out / "trends.csv"
            write_table(trends, outs.file(written["trends"]), raw_csv=args.raw_csv)
        else:  # an earlier run's trends would pass for these themes' trends
            outs.stale(out / "trends.csv")
        written["errors"] = out / "errors.csv"
        write_table(rejected, outs.file(written["errors"]), raw_csv=args.raw_csv)
        written["model"] = out / "model"
        tm.save(outs.folder(written["model"]))
    ui.table(themes[["id", "label", "size", "share"]])
    ui.say(f"\n{len(themes)} themes, outlier share {tm.outlier_share_:.1%}; wrote {out}/themes.csv, assignments.csv"
           + (", trends.csv" if trends is not None else "") + f", errors.csv ({len(rejected)} rows)")
    return {"rows_in": len(r) + len(rejected), "rows_out": len(r), "rows_rejected": len(rejected),
            "themes": len(themes), "outlier_share": float(tm.outlier_share_),
            "outputs": {k: str(v) for k, v in written.items()}, "embedding_model": _model_id(emb)}


@command
def _themes_parser(sub: SubParsers) -> None:
    p = add_command(sub, "themes", "cluster feedback into named themes with trends",
                    "Clusters the file into named themes and writes themes.csv, assignments.csv, trends.csv "
                    "(when the input has created_at), errors.csv and the saved model under --out.",
                    ["feedback-nlp themes --in backlog.csv --out themes_out",
                     "feedback-nlp themes --in b.parquet --out t --min-theme-size 20 --freq M"])
    p.add_argument("--in", dest="input", required=True, type=input_file, help="feedback CSV/TSV/Parquet/JSONL file")
    p.add_argument("--out", type=output_folder, required=True, help="output folder")
    p.add_argument("--min-theme-size", type=theme_size, default=10, help="smallest cluster that becomes a theme")
    p.add_argument("--max-outlier-share", type=unit_interval, default=0.15,
                   help="lower the similarity an item needs to join a theme until at most this share of the "
                        "file's items is unassigned, but never below the floor of 0.35 cosine (items further "
                        "from every theme stay unassigned, so the share can end higher; with no theme found, "
                        "all are)")
    p.add_argument("--freq", type=period, default="W", help="trend period: D, W, M, Q or Y (pandas frequency)")
    _add_stream_args(p)
    _add_raw_csv(p)
    p.set_defaults(func=cmd_themes, check=_check_themes)


# --- report --------------------------------------------------------------------------------------

def _check_report(args: argparse.Namespace) -> None:
    from .report import REPORT_FILES

    if args.model and args.taxonomy:  # the taxonomy was ignored without a word: the report tagged with --model
        raise UsageError("--model and --taxonomy both tag the items (--taxonomy tags zero-shot, without a trained "
                         "model): give one of them")
    out = Path(args.out)
    not_a_saved_folder(out)
    check_paths({"--in": args.input}, {"--out": args.out, **{f: str(out / f) for f in REPORT_FILES}}, folders=["--out"])
    require_columns(args.input, {"--text-col": args.text_col, "--id-col": args.id_col}, args)
    require_period_fits(args.input, args.freq, args, ("created_at", "status_changed_at"))


def cmd_report(args: argparse.Namespace) -> dict:
    from .report import build_report

    ui = _ui(args)
    emb = _embedder(args)
    summary = build_report(args.input, args.out, model=args.model, taxonomy=args.taxonomy, embedder=emb,
                           min_theme_size=args.min_theme_size, text_col=args.text_col, id_col=args.id_col,
                           raw_csv=args.raw_csv, format=args.format, encoding=args.encoding, freq=args.freq,
                           sentiment=None if args.sentiment_model in ("", "none") else args.sentiment_model)
    shown = [c for c in ("theme", "label", "volume", "unique_accounts", "priority") if c in summary.top_themes]
    ui.table(summary.top_themes[shown], 10)  # no account column in the input: no unique_accounts
    ui.say(f"\n{summary.items} items, {summary.themes} themes, emerging: {', '.join(summary.emerging) or 'none'}",
           f"report: {summary.html}")
    return {"rows_in": summary.items + summary.rejected, "rows_out": summary.items, "rows_rejected": summary.rejected,
            "themes": summary.themes, "emerging": list(summary.emerging), "sentiment": summary.sentiment,
            "outputs": {"html": str(summary.html), **{k: str(v) for k, v in summary.tables.items()}},
            "model": str(args.model or ("zero-shot" if args.taxonomy else "request-type")),
            "embedding_model": _model_id(emb)}


@command
def _report_parser(sub: SubParsers) -> None:
    p = add_command(sub, "report", "the leadership report: report.html plus its tables",
                    "Reads, cleans, embeds, tags, dedupes, themes and scores the file and writes report.html "
                    "(self-contained, opens offline) with its CSV tables under --out. Rejected rows are listed "
                    "in rejected.csv with their text redacted.",
                    ["feedback-nlp report --in backlog.csv --out report_out",
                     "feedback-nlp report --in b.csv --taxonomy taxonomy.yaml --out r --min-theme-size 20"])
    p.add_argument("--in", dest="input", required=True, type=input_file, help="feedback CSV/TSV/Parquet/JSONL file")
    p.add_argument("--out", type=output_folder, required=True, help="output folder")
    p.add_argument("--model", default=None, help="tag model folder or bundled name (default: request-type)")
    p.add_argument("--taxonomy", default=None, type=input_path, help="zero-shot tagging with this taxonomy when no --model")
    p.add_argument("--min-theme-size", type=theme_size, default=10, help="smallest cluster that becomes a theme")
    p.add_argument("--sentiment-model", default="sentiment", metavar="DIR",
                   help="sentiment model for items without a sentiment column value (default: the bundled one; "
                        "'none': the input's sentiment column only)")
    p.add_argument("--freq", type=period, default="W", help="trend period: D, W, M, Q or Y (pandas frequency)")
    p.add_argument("--text-col", default="text", help="column holding the feedback text")
    p.add_argument("--id-col", default=None, help="column holding a unique id per row (default: id if present)")
    _add_input_args(p)
    _add_embedding_args(p)
    _add_raw_csv(p)
    p.set_defaults(func=cmd_report, check=_check_report)


# --- score ----------------------------------------------------------------------------------------

def _score_columns(args: argparse.Namespace) -> dict[str, str | None]:
    by = {"rice": {"--reach-col": args.reach_col, "--impact-col": args.impact_col,
                   "--confidence-col": args.confidence_col, "--effort-col": args.effort_col},
          "ice": {"--impact-col": args.impact_col, "--confidence-col": args.confidence_col, "--ease-col": args.ease_col},
          "moscow": {"--score-col": args.score_col},
          "demand": {"--group-col": args.group_col, "--account-col": args.account_col or None,
                     "--revenue-col": args.revenue_col or None, "--time-col": args.time_col or None}}
    return by[args.framework]


def _check_score(args: argparse.Namespace) -> None:
    check_paths({"--in": args.input}, {"--out": args.out})
    require_columns(args.input, _score_columns(args), args, optional=("--account-col", "--revenue-col", "--time-col"))


def cmd_score(args: argparse.Namespace) -> dict:
    import numpy as np
    import pandas as pd

    from .records import read_table, sniff_format, table_format, write_table

    ui = _ui(args)
    df = read_table(args.input, format=args.format, encoding=args.encoding)
    where = _Where(args.input, df, sniff_format(args.input) if args.format == "auto" else args.format)
    df = df.drop(columns="_row", errors="ignore")
    if df.empty and len(df.columns) == 0:  # "[]" names no columns: give it those the options name, as a
        # header-only CSV has them (it was "unexpected KeyError: 'score'")
        df = df.assign(**{c: pd.Series(dtype=object) for c in _score_columns(args).values() if c})
    _refuse_overwritten_columns(args, df)

    parsed: dict[str, Any] = {}  # each column parsed once: the score and a typed output both use its numbers

    def col(name: str) -> Any:
        if name in parsed:
            return parsed[name]
        values = df[name]
        if values.dtype == object or str(values.dtype) == "str":
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.astype(str).str.strip().ne("")
            if bad.any():
                raise ColumnError(f"{args.input}: column {name!r} has non-numeric values at "
                                  f"{where.name(list(np.flatnonzero(bad.to_numpy())))} (e.g. {quoted_cell(values[bad].iloc[0])})")
            values = numbers
        parsed[name] = values
        return values

    try:
        out = _score(args, df, col)
    except InvalidInputError as exc:  # the scoring functions count positions (or rows) from 0; a user reads lines
        message = re.sub(r"at positions (\d[\d, ]*\d|\d)|in rows \[([\d, ]+)\]", lambda m: "at " + where.name(
            [int(i) for i in (m.group(1) or m.group(2)).replace(" ", "").split(",") if i]), str(exc))
        # the API's advice, in the words of this command
        message = message.replace("pass explicit cutoffs={'must':..,'should':..,'could':..}",
                                  "pass --cutoffs MUST,SHOULD,COULD (such as 8,4,2)")
        message = message.replace("confidence_scale='percent'", "--confidence-scale percent")
        raise type(exc)(message) from exc
    if args.framework != "demand" and table_format(args.out) not in ("csv", "tsv"):
        # A typed output holds the numbers the score was computed from: the file is read as text (ids such as
        # "007" stay), so "reach": "1" reached Parquet and JSON as a string. A CSV keeps the cell as written.
        out = out.assign(**{c: col(c) for c in _score_columns(args).values() if c})
    with OutputSet() as outs:
        write_table(out, outs.file(args.out), raw_csv=args.raw_csv)
    ui.table(out)
    ui.say(f"\nwrote {len(out)} rows to {args.out}")
    result = {"rows_in": len(df), "rows_out": len(out), "framework": args.framework,
              "outputs": {"output": str(args.out)}}
    if args.framework == "demand":  # rows without a group are left out by design: say how many, never silently
        result["rows_without_group"] = missing = int(out.attrs.get("rows_without_theme", 0))
        if missing:
            ui.say(f"{missing} of {len(df)} rows have no {args.group_col} (blank, missing or an outlier) and are "
                   "not counted")
        # under --json the line below is not printed: the count was nowhere, so a script never knew revenue was left out
        result["revenue_rows_without_account"] = unaccounted = int(out.attrs.get("revenue_rows_without_account", 0))
        if unaccounted:  # was dropped without a word
            ui.say(f"{unaccounted} rows have a revenue ({args.revenue_col}) but no account ({args.account_col}): "
                   "revenue counts once per account, so theirs is not counted")
    return result


# The columns rice/ice/moscow add to every row of the input (demand writes a table of its own).
_SCORE_OUTPUT_COLUMNS = {"rice": ("rice",), "ice": ("ice",), "moscow": ("moscow", "moscow_rule")}


def _refuse_overwritten_columns(args: argparse.Namespace, df: Any) -> None:
    """Refuse an input that already has a column the framework writes: it was replaced without a word (a
    spreadsheet's own ``rice`` figures, or the ``moscow`` categories a team set by hand, lost in the output)."""
    taken = [c for c in _SCORE_OUTPUT_COLUMNS.get(args.framework, ()) if c in df.columns]
    if taken:
        raise ColumnError(f"{args.input} already has {'a column' if len(taken) == 1 else 'columns'} "
                          f"{' and '.join(map(quoted, taken))}, which --framework {args.framework} writes: rename or drop "
                          f"{'it' if len(taken) == 1 else 'them'} in the input (an earlier score run's output?), "
                          "so that no input column is replaced in the output")


def _score(args: argparse.Namespace, df: Any, col: Callable[[str], Any]) -> Any:
    from . import scoring

    if args.framework == "rice":
        out = df.assign(rice=scoring.rice(col(args.reach_col), col(args.impact_col), col(args.confidence_col),
                                          col(args.effort_col), confidence_scale=args.confidence_scale))
        out = out.sort_values("rice", ascending=False, kind="stable")
    elif args.framework == "ice":
        out = df.assign(ice=scoring.ice(col(args.impact_col), col(args.confidence_col), col(args.ease_col)))
        out = out.sort_values("ice", ascending=False, kind="stable")
    elif args.framework == "moscow":
        ex = scoring.moscow(col(args.score_col), cutoffs=args.cutoffs, explain=True)
        out = df.assign(moscow=ex["moscow"].to_numpy(), moscow_rule=ex["rule"].to_numpy())
    else:
        if args.group_sep:  # "bug|export" from a tagged CSV was a group of its own, not one item for each tag
            df = df.assign(**{args.group_col: df[args.group_col].map(
                lambda v: [t.strip() for t in v.split(args.group_sep) if t.strip()] if isinstance(v, str)
                and args.group_sep in v else v)})
        out = scoring.theme_scores(df, theme_col=args.group_col, account_col=args.account_col or None,
                                   revenue_col=args.revenue_col or None, time_col=args.time_col or None,
                                   window=args.window)
    return out


@command
def _score_parser(sub: SubParsers) -> None:
    p = add_command(sub, "score", "RICE / ICE / MoSCoW scores of a table, or demand scores of themes or tags",
                    "rice/ice/moscow add a score column to every row; demand aggregates items per theme (or "
                    "tag) into volume, unique accounts, revenue, growth and a 0-100 priority.",
                    ["feedback-nlp score --in opportunities.csv --out rice.csv --framework rice",
                     "feedback-nlp score --in items.csv --out demand.csv --group-col theme_label --window 14D",
                     "feedback-nlp score --in scored.csv --out moscow.csv --framework moscow --cutoffs 8,4,2"])
    p.add_argument("--in", dest="input", required=True, type=input_file, help="CSV, TSV, Parquet or JSONL file")
    p.add_argument("--out", required=True, type=output_file, help="output file (.csv, .tsv, .parquet, .jsonl or .json: one JSON array)")
    p.add_argument("--framework", choices=["rice", "ice", "moscow", "demand"], default="demand",
                   help="the scoring framework")
    p.add_argument("--reach-col", default="reach", help="rice: people reached per period")
    p.add_argument("--impact-col", default="impact", help="rice: 0.25/0.5/1/2/3; ice: 1-10")
    p.add_argument("--confidence-col", default="confidence", help="rice: fraction or percent; ice: 1-10")
    p.add_argument("--confidence-scale", choices=["fraction", "percent"], default="fraction",
                   help="rice: confidence as 0-1 or 0-100")
    p.add_argument("--effort-col", default="effort", help="rice: person-months (> 0)")
    p.add_argument("--ease-col", default="ease", help="ice: 1-10")
    p.add_argument("--score-col", default="score", help="moscow: the score mapped to categories")
    p.add_argument("--cutoffs", type=cutoffs, default=None,
                   help="moscow: cutoffs MUST,SHOULD,COULD, decreasing (default: 80th/50th/20th percentiles)")
    p.add_argument("--group-col", default="theme", help="demand: the theme or tag column")
    p.add_argument("--group-sep", default="|", help="demand: a --group-col cell holding several tags joined by this "
                   "(as `tag` writes them to CSV) counts once for each tag; '' keeps cells whole")
    p.add_argument("--account-col", default="account_id", help="demand: account column ('' for none)")
    p.add_argument("--revenue-col", default="account_revenue", help="demand: revenue column ('' for none)")
    p.add_argument("--time-col", default="created_at", help="demand: timestamp column ('' for none)")
    p.add_argument("--window", type=time_window, default="28D", help="demand: growth window, a duration (28D, 4W)")
    _add_input_args(p)
    _add_raw_csv(p)
    p.set_defaults(func=cmd_score, check=_check_score)


# --- backends -------------------------------------------------------------------------------------

def cmd_backends(args: argparse.Namespace) -> dict:
    import pandas as pd

    from .backends import FIDELITY_GATE, RETRIEVAL_GATE, calibrate_backends

    ui = _ui(args)
    result = calibrate_backends(args.embedding_model, repeats=args.repeats)
    table = pd.DataFrame([vars(r) for r in result.rows]).round(4)
    ui.table(table)
    if result.decided:
        ui.say(f"\nauto now uses {result.choice} on this machine ({result.note}; measured in {result.seconds:.1f} s; "
               f"gates: mean cosine to torch fp32 >= {FIDELITY_GATE}, top-5 neighbours agreeing >= {RETRIEVAL_GATE})")
    else:
        ui.say(f"\nstored nothing: {result.note}. auto keeps using {result.choice} (capability rules).")
    return result.to_dict()


@command
def _backends_parser(sub: SubParsers) -> None:
    p = add_command(sub, "backends", "measure the embedding backends here and store auto's choice",
                    "Times every embedding backend on this machine in interleaved rounds, checks each against "
                    "torch fp32 (mean cosine >= 0.99, top-5 neighbours agreeing >= 0.98) and stores the one "
                    "faster than fp32 by 10% in every round; stores nothing when the machine is too noisy to tell.",
                    ["feedback-nlp backends", "feedback-nlp backends --repeats 3 --json"])
    p.add_argument("--embedding-model", default=None, help="embedding model folder or name (default: bundled MiniLM)")
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="timing rounds (>= 3 to store a choice; each round times every backend once)")
    p.set_defaults(func=cmd_backends)


@command
def _quackback_parser(sub: SubParsers) -> None:
    from .integrations.quackback._cli import add_quackback_parser

    p = add_quackback_parser(sub)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = p.description or "Pull the posts of a Quackback portal into a records file, or export what the webhook stored."
    p.epilog = p.epilog or ("examples:\n  feedback-nlp quackback pull --url https://feedback.acme.com --out posts.csv\n"
                            "  feedback-nlp quackback export --data serve_data --out posts.parquet")


@command
def _service_parsers(sub: SubParsers) -> None:
    from .service._cli import add_parsers as add_service_parsers

    add_service_parsers(sub, [_common_flags(suppress=True)])  # serve, keys


# --- main -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog=PROG, description="Embed, tag, dedupe, theme and score customer feedback.",
                     epilog="exit codes: 0 success, 1 the data or the run failed, 2 usage error, 130 interrupted, "
                                   "143 terminated (SIGTERM). "
                            f"See '{PROG} COMMAND --help'.", parents=[_common_flags(suppress=False)])
    parser.add_argument("--version", action="version", version=__version__, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for builder in _BUILDERS:
        builder(sub)
    _add_missing_examples(parser)
    return parser


# Examples of the commands whose parsers are built outside this module (serve, keys, quackback): their --help ended
# without any, and without the defaults, though docs/cli.md promises both for every command.
_EXAMPLES = {
    "serve": ["feedback-nlp serve --model request-type --port 8080",
              "feedback-nlp serve --data serve_data --model bugs=models/bugs --model request-type"],
    "keys": ["feedback-nlp keys create --name dashboard --scope tag", "feedback-nlp keys list --json"],
    "keys create": ["feedback-nlp keys create --name dashboard --scope tag",
                    "feedback-nlp keys create --name ops --scope admin --data serve_data"],
    "keys list": ["feedback-nlp keys list", "feedback-nlp keys list --data serve_data --json"],
    "keys revoke": ["feedback-nlp keys revoke KEY_ID", "feedback-nlp keys revoke KEY_ID --data serve_data"],
    "quackback pull": ["feedback-nlp quackback pull --url https://feedback.acme.com --out posts.csv",
                       "feedback-nlp quackback pull --url https://feedback.acme.com --tagged-only --out labelled.csv"],
    "quackback export": ["feedback-nlp quackback export --data serve_data --out posts.parquet"],
    "quackback retry": ["feedback-nlp quackback retry --data serve_data",
                        "feedback-nlp quackback retry --data serve_data --event EVENT_ID"],
    "quackback serve": ["feedback-nlp quackback serve --data qb_data --quackback-secret-file secret.txt --port 8081"],
}


def _add_missing_examples(parser: argparse.ArgumentParser) -> None:
    """Give every command's parser that has no epilog its ``examples:`` and the help formatter that shows defaults."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases name one parser twice
                name = child.prog[len(PROG) + 1:]
                if not child.epilog and name in _EXAMPLES:
                    child.epilog = "examples:\n" + "\n".join(f"  {e}" for e in _EXAMPLES[name])
                    child.formatter_class = _Formatter
                _add_missing_examples(child)


def _describe(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message of an exception."""
    if isinstance(exc, (UsageError, ModelNotFoundError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, BrokenPipeError):
        return EXIT_FAILURE, "output closed early (broken pipe); files written so far are complete"
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        if isinstance(exc, FeedbackNLPError) or not exc.strerror:
            return EXIT_FAILURE, str(exc)
        return EXIT_FAILURE, f"{what}{where}"
    if isinstance(exc, FeedbackNLPError):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, MemoryError):
        return EXIT_FAILURE, "out of memory; try a smaller --chunk-size"
    return EXIT_FAILURE, (f"unexpected {type(exc).__name__}: {exc} "
                          "(rerun with --debug for the traceback, and please report it)")


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests capture it)
        pass


def _emit_json(payload: dict) -> None:
    from ._persist import finite_json

    # a NaN figure (a metric of a tag with no test rows) is null: allow_nan=False alone failed the whole run
    print(json.dumps(finite_json(payload), default=str, allow_nan=False), flush=True)


def _fail(code: int, message: str, as_json: bool, command: str | None) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)  # one line, whatever the message held
    if as_json:
        try:
            _emit_json({"status": "error", "exit_code": code, "command": command, "error": message})
        except OSError:  # a closed pipe, or stdout on a full disk: the error line above is all there is
            _silence_stdout()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, 1, 2, 130 or 143) instead of raising."""
    from . import __version__

    if isinstance(argv, (str, bytes)):  # each of its characters was an argument: "invalid choice: 's'"
        return _fail(EXIT_USAGE, "main() takes the arguments as a list, not one string: split it (shlex.split)",
                     False, None)
    # a path as subprocess takes it (a pathlib.Path); anything else was a bare TypeError from argparse
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in (sys.argv[1:] if argv is None else argv)]
    odd = next((i for i, a in enumerate(argv) if not isinstance(a, str)), None)
    as_json = "--json" in argv
    if odd is not None:
        return _fail(EXIT_USAGE, f"argument {odd} of main()'s list is {type(argv[odd]).__name__} {argv[odd]!r}, not a "
                     "string: pass every argument as text", as_json, None)
    try:
        parser = build_parser()
        for word in itertools.takewhile(lambda w: w.startswith("-") and w != "--", argv):  # before the command
            parser.refuse_abbreviation(word)  # type: ignore[attr-defined]
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the command's own parser, so that the hint names its --help
            sub = getattr(args, f"{args.command}_command", None)  # `keys list --x` named `keys --help`
            name = f"{args.command} {sub}" if isinstance(sub, str) else args.command
            raise _UsageExit(f"unrecognized arguments: {' '.join(extra)} (see '{PROG} {name} --help')", args.command)
    except _UsageExit as exc:
        return _fail(EXIT_USAGE, str(exc), as_json, exc.command)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    as_json = bool(args.json)
    previous = _on_sigterm_interrupt(args.command)
    try:
        return _run(args, as_json, __version__)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or ``kill`` stopping the run), raised where Ctrl-C would be."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def _on_sigterm_interrupt(command: str) -> Any:
    """Make SIGTERM stop a command like Ctrl-C: its clean-up runs (temp files removed, the job's lock released)
    and it exits 143 with one line, instead of dying at once. The server keeps its own signal handling.
    Returns the handler to put back, or None where none was installed."""
    if command == "serve" or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings as one line on stderr ("feedback-nlp: warning: ..."), not Python's file:line and source."""
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _drop_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings under --quiet: not shown."""


def _run(args: argparse.Namespace, as_json: bool, version: str) -> int:
    quiet = bool(getattr(args, "quiet", False))  # nothing but errors: the library's warnings were printed
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR if quiet else logging.WARNING,
                        format="%(asctime)s %(message)s")
    t0 = time.monotonic()
    shown, warnings.showwarning = warnings.showwarning, _drop_warning if quiet else _show_warning
    try:
        return _run_command(args, as_json, version, t0)
    finally:
        warnings.showwarning = shown


@contextlib.contextmanager
def _output_lock(args: argparse.Namespace) -> Iterator[None]:
    """One run per output (see :func:`_lock.output_lock`). ``tag`` takes the same lock itself (its library
    entry point, ``tag_file``, is locked for every caller); ``build_report`` is locked for every caller too,
    and inside this lock its own is a no-op."""
    out = getattr(args, "out", None)
    if not isinstance(out, str) or args.command == "tag":
        yield
        return
    from ._lock import output_lock

    inputs = {f"--{k}": v for k in ("in", "against", "data", "taxonomy", "model")
              if isinstance(v := getattr(args, "input" if k == "in" else k, None), str)}
    with output_lock(out, inputs):
        yield


def _check_cache(args: argparse.Namespace) -> None:
    """``--cache`` is a SQLite database written while the command runs: it may be none of the command's files
    (``--cache tagged.csv``: the output renamed over it, and the next run found a CSV where its cache was,
    refused as "not a usable cache"), nor inside a saved model folder, whose manifest it would break."""
    cache = getattr(args, "cache", None)
    if isinstance(cache, str) and not cache.strip() and not getattr(args, "no_cache", False):
        # `--cache "$CACHE"` with the variable unset used the default cache without a word
        raise UsageError("--cache is empty: give the cache file, or --no-cache, or leave --cache out for the default "
                         "($FEEDBACK_NLP_CACHE, else $FEEDBACK_NLP_HOME/embeddings.sqlite)")
    if not cache or getattr(args, "no_cache", False):
        return
    files = {f"--{k}": v for k in ("in", "against", "data", "taxonomy", "out", "errors")
             if isinstance(v := getattr(args, "input" if k == "in" else k, None), str)}
    if args.func is cmd_tag:
        files["the errors file"] = _tag_errors_path(args)
    clash = next((a for a, b in distinct_paths(**files, cache=cache) if b == "cache"), None)
    if clash is not None:
        raise UsageError(f"--cache and {clash} are the same file ({cache}); the cache is a database written while the "
                         "command runs: give it a path of its own")
    outside_saved_folders(Path(cache).expanduser())


# commands that embed and read feedback records: they read FEEDBACK_NLP_BACKEND, _AUTO, _LONG_TEXT, _DATE_ORDER
_READS_ENVIRONMENT = frozenset({"demo", "train", "eval", "tag", "dedupe", "themes", "report"})


def _check_environment(args: argparse.Namespace) -> None:
    """A ``FEEDBACK_NLP_*`` variable that a command reads stands for one of its options, so a bad value is a
    usage error (exit 2) named before any work, as ``--backend bogus`` is. It was exit 1, found deep in the
    run (after the input was read), and FEEDBACK_NLP_BACKEND's message did not name the variable."""
    from . import _config

    if args.command == "score" and args.framework == "demand":  # it reads dates, and nothing else of the environment:
        # a bad FEEDBACK_NLP_DATE_ORDER was exit 1, as if the data were at fault
        reads: tuple[Callable[[], Any], ...] = (_config.date_order,)
    elif args.command in _READS_ENVIRONMENT:
        reads = (_config.auto_mode, _config.long_text, _config.date_order)
    else:
        return
    backend = _config.env("FEEDBACK_NLP_BACKEND")
    if (args.command in _READS_ENVIRONMENT and getattr(args, "backend", None) is None and backend is not None
            and backend.strip().lower() not in BACKENDS):
        raise UsageError(f"FEEDBACK_NLP_BACKEND={quoted(backend)} is not valid; choose one of {list(BACKENDS)}, "
                         "or unset it (the default is auto)")
    for read in reads:
        try:
            read()
        except InvalidInputError as exc:
            raise UsageError(f"{exc}, or unset the variable") from None


def _run_command(args: argparse.Namespace, as_json: bool, version: str, t0: float) -> int:
    try:
        _check_environment(args)
        check = getattr(args, "check", None)
        if check is not None:
            check(args)  # arguments, paths and columns: before any work or output
        _check_cache(args)
        with _output_lock(args):
            summary = args.func(args) or {}
        if isinstance(summary, int):  # a command that returns an exit code rather than a summary
            return summary
        with _writing_stdout():
            if as_json:
                _emit_json({"command": args.command, "status": "ok", "version": version,
                            "seconds": round(time.monotonic() - t0, 3), **summary})
            sys.stdout.flush()
        return EXIT_OK
    except KeyboardInterrupt as exc:
        hint = "; run again with --resume to continue" if getattr(args, "command", None) == "tag" else ""
        if isinstance(exc, _Terminated):
            return _fail(EXIT_TERMINATED, f"terminated (SIGTERM){hint}", as_json, args.command)
        return _fail(EXIT_INTERRUPTED, f"interrupted{hint}", as_json, args.command)
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        code, message = _describe(exc)
        if isinstance(exc, BrokenPipeError) or getattr(exc, "filename", None) == _STDOUT:
            _silence_stdout()  # stdout cannot take the JSON error object either
            as_json = False
        return _fail(code, message, as_json, args.command)


_STDOUT = "standard output (files written so far are complete)"


@contextlib.contextmanager
def _writing_stdout() -> Iterator[None]:
    """Name standard output in an error writing to it: ``> /dev/full`` (a full disk under a cron job's log)
    said only "No space left on device", as if an output file had failed, though every file was written."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, _STDOUT) from exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
