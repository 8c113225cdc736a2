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


# --- score ----------------------------------------------------------------------------------------

def cmd_score(args: argparse.Namespace) -> int:
    from . import scoring
    from .records import read_table, write_table

    df = read_table(args.input).drop(columns="_row", errors="ignore")

    def col(name: str):
        import pandas as pd

        from .errors import ColumnError

        if name not in df.columns:
            raise ColumnError(f"column {name!r} not found in {args.input}; available: {list(df.columns)} "
                              f"(choose it with --{name.replace('_', '-')}-col)")
        return pd.to_numeric(df[name], errors="coerce") if df[name].dtype == object or str(df[name].dtype) == "str" else df[name]

    if args.framework == "rice":
        out = df.assign(rice=scoring.rice(col(args.reach_col), col(args.impact_col), col(args.confidence_col),
                                          col(args.effort_col), confidence_scale=args.confidence_scale))
        out = out.sort_values("rice", ascending=False)
    elif args.framework == "ice":
        out = df.assign(ice=scoring.ice(col(args.impact_col), col(args.confidence_col), col(args.ease_col)))
        out = out.sort_values("ice", ascending=False)
    elif args.framework == "moscow":
        cut = None
        if args.cutoffs:
            must, should, could = (float(x) for x in args.cutoffs.split(","))
            cut = {"must": must, "should": should, "could": could}
        ex = scoring.moscow(col(args.score_col), cutoffs=cut, explain=True)
        out = df.assign(moscow=ex["moscow"].to_numpy(), moscow_rule=ex["rule"].to_numpy())
    else:
        out = scoring.theme_scores(df, theme_col=args.group_col, account_col=args.account_col or None,
                                   revenue_col=args.revenue_col or None, time_col=args.time_col or None,
                                   window=args.window)
    write_table(out, args.out)
    _print_table(out)
    print(f"\nwrote {len(out)} rows to {args.out}")
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

    p = sub.add_parser("score", help="RICE / ICE / MoSCoW scores of a table, or demand scores of themes or tags")
    p.add_argument("--in", dest="input", required=True, help="CSV, Parquet or JSONL file")
    p.add_argument("--out", required=True, help="output file (.csv, .parquet or .jsonl)")
    p.add_argument("--framework", choices=["rice", "ice", "moscow", "demand"], default="demand")
    p.add_argument("--reach-col", default="reach")
    p.add_argument("--impact-col", default="impact")
    p.add_argument("--confidence-col", default="confidence")
    p.add_argument("--confidence-scale", choices=["fraction", "percent"], default="fraction")
    p.add_argument("--effort-col", default="effort")
    p.add_argument("--ease-col", default="ease")
    p.add_argument("--score-col", default="score", help="column MoSCoW maps to categories")
    p.add_argument("--cutoffs", default=None, help="MoSCoW cutoffs MUST,SHOULD,COULD (default: quantiles)")
    p.add_argument("--group-col", default="theme", help="demand: the theme or tag column")
    p.add_argument("--account-col", default="account_id", help="demand: account column ('' for none)")
    p.add_argument("--revenue-col", default="account_revenue", help="demand: revenue column ('' for none)")
    p.add_argument("--time-col", default="created_at", help="demand: timestamp column ('' for none)")
    p.add_argument("--window", default="28D", help="demand: growth window (pandas offset, e.g. 28D)")
    p.set_defaults(func=cmd_score)
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
