"""The ``feedback-nlp`` command line: demo, train, eval, tag, dedupe, themes, score.

Each sub-command is a thin shell over the Python API; errors from the library are printed as one line
(``error: ...``) with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import FeedbackNLPError

__all__ = ["main"]


def _embedder(args: argparse.Namespace):
    from .embedding import Embedder

    cache = None if getattr(args, "no_cache", False) else (args.cache or True)
    return Embedder(args.embedding_model, cache=cache, show_progress=sys.stderr.isatty(),
                    backend=getattr(args, "backend", None))


def _add_embedding_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embedding-model", default=None, help="embedding model folder or name (default: bundled MiniLM)")
    p.add_argument("--backend", default=None, choices=["auto", "torch", "torch-bf16"], help="embedding backend")
    p.add_argument("--cache", default=None, help="embedding cache file (default: $FEEDBACK_NLP_CACHE or ~/.cache)")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")


def _print_table(df, max_rows: int = 15) -> None:
    import pandas as pd

    with pd.option_context("display.max_colwidth", 60, "display.width", 160, "display.max_columns", 20):
        print(df.head(max_rows).to_string(index=False))


# --- demo -----------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    demo.run(out_dir=Path(args.out), embedder=_embedder(args), n_examples=args.examples)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedback-nlp", description="Embed, tag, dedupe, theme and score customer feedback.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the library end to end on the bundled sample")
    p.add_argument("--out", default="demo_out", help="folder for the demo outputs")
    p.add_argument("--examples", type=int, default=4, help="items whose nearest neighbours are shown")
    _add_embedding_args(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FeedbackNLPError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
