"""The ``feedback-nlp`` command line: demo, train, eval, tag, dedupe, themes, report, score, backends.

Each sub-command is a thin shell over the Python API; errors from the library are printed as one line
(``error: ...``) with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .backends import BACKENDS
from .errors import FeedbackNLPError

__all__ = ["main"]


def _embedder(args: argparse.Namespace):
    from .embedding import Embedder

    cache = None if getattr(args, "no_cache", False) else (args.cache or True)
    return Embedder(args.embedding_model, cache=cache, show_progress=sys.stderr.isatty(),
                    backend=getattr(args, "backend", None))


def _add_embedding_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embedding-model", default=None, help="embedding model folder or name (default: bundled MiniLM)")
    p.add_argument("--backend", default=None, choices=list(BACKENDS),
                   help="embedding backend (default: auto, the fastest measured on this machine)")
    p.add_argument("--cache", default=None, help="embedding cache file (default: $FEEDBACK_NLP_CACHE or ~/.cache)")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """How the --in file is read: its format and text encoding (see docs/ingest.md)."""
    from .records import FORMATS

    p.add_argument("--format", default="auto", choices=list(FORMATS),
                   help="input format (default: auto, by extension and content); slack/zendesk/intercom/survey read exports")
    p.add_argument("--encoding", default=None,
                   help="text encoding of a CSV/JSON input (default: UTF-8, BOM honoured; e.g. cp1252, latin-1, utf-16)")


def _add_stream_args(p: argparse.ArgumentParser) -> None:
    """Columns and chunking of a file read through the streaming path, plus the embedding options."""
    _add_input_args(p)
    p.add_argument("--text-col", default="text")
    p.add_argument("--id-col", default="id")
    p.add_argument("--chunk-size", type=int, default=5000)
    _add_embedding_args(p)


def _print_table(df, max_rows: int = 15) -> None:
    import pandas as pd

    with pd.option_context("display.max_colwidth", 60, "display.width", 160, "display.max_columns", 20):
        print(df.head(max_rows).to_string(index=False))


# --- demo -----------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    demo.run(out_dir=Path(args.out), embedder=_embedder(args), n_examples=args.examples)
    return 0


# --- train / eval / tag ---------------------------------------------------------------------------

def _labelled(path: str, text_col: str, label_col: str, sep: str | None):
    from .errors import ColumnError
    from .records import read_table

    df = read_table(path)
    for col, role in ((text_col, "text"), (label_col, "label")):
        if col not in df.columns:
            raise ColumnError(f"{role} column {col!r} not found in {path}; available: "
                              f"{[c for c in df.columns if c != '_row']} (choose it with --{role}-col)")
    labels = df[label_col].tolist()
    if sep:
        labels = [[x.strip() for x in str(v).split(sep) if x.strip()] for v in labels]
    return df[text_col].astype(str).tolist(), labels


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from .tagging import TagClassifier
    from .taxonomy import Taxonomy

    sep = args.sep if args.multi_label else None
    texts, labels = _labelled(args.data, args.text_col, args.label_col, sep)
    taxonomy = Taxonomy.load(args.taxonomy) if args.taxonomy else None
    emb = _embedder(args)

    def make() -> TagClassifier:
        return TagClassifier(emb, taxonomy, multi_label=True if args.multi_label else None, head=args.head,
                             min_confidence=args.min_confidence, zero_shot=args.zero_shot,
                             random_state=args.random_state, show_progress=sys.stderr.isatty())

    metrics: dict = {}
    if args.holdout > 0 and not args.zero_shot:
        rng = np.random.default_rng(args.random_state)
        order = rng.permutation(len(texts))
        cut = int(len(texts) * (1 - args.holdout))
        tr, te = order[:cut], order[cut:]
        print(f"evaluating on a held-out {args.holdout:.0%} ({len(te)} rows) before training on everything…", file=sys.stderr)
        held = make().fit([texts[i] for i in tr], [labels[i] for i in tr])
        report = held.evaluate([texts[i] for i in te], [labels[i] for i in te])
        metrics = {k: v for k, v in report.to_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        metrics["evaluation"] = f"held-out random {args.holdout:.0%} of {args.data}"
        print(report.to_markdown(max_tags=15))
    clf = make().fit(None if args.zero_shot else texts, None if args.zero_shot else labels)
    clf.save(args.out, metrics=metrics, description=args.description or "",
             training_data=f"{len(texts)} rows from `{Path(args.data).name}` (text column `{args.text_col}`, label column `{args.label_col}`)")
    print(f"saved model to {args.out} ({len(clf.classes_)} tags, {'multi-label' if clf.multi_label_ else 'multi-class'})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .tagging import TagClassifier

    clf = TagClassifier.load(args.model)
    sep = args.sep if clf.multi_label_ else None
    texts, labels = _labelled(args.data, args.text_col, args.label_col, sep)
    report = clf.evaluate(texts, labels)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.to_markdown())
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from .batch import tag_file

    cache = False if args.no_cache else (args.cache or True)
    summary = tag_file(args.model, args.input, args.out, errors_path=args.errors, chunk_size=args.chunk_size,
                       resume=args.resume, text_col=args.text_col, id_col=args.id_col, cache=cache,
                       engine=args.engine, scheduler=args.scheduler, backend=args.backend,
                       format=args.format, encoding=args.encoding)
    print(summary)
    print(f"output: {summary.output}\nerrors: {summary.errors}")
    return 0


# --- dedupe / themes ------------------------------------------------------------------------------

def _stream(path: str, args: argparse.Namespace, emb):
    """Validate, clean and embed a file chunk by chunk (the batch path), reporting rejected rows."""
    from .batch import embed_file

    records, vectors, rejected = embed_file(path, emb, text_col=args.text_col, id_col=args.id_col,
                                            chunk_size=args.chunk_size, progress=sys.stderr.isatty(),
                                            format=args.format, encoding=args.encoding)
    if len(rejected):
        print(f"{len(rejected)} rows of {path} rejected (see the errors file)", file=sys.stderr)
    return records, vectors, rejected


def cmd_dedupe(args: argparse.Namespace) -> int:
    from .dedupe import Deduper
    from .records import write_table

    emb = _embedder(args)
    records, vectors, rejected = _stream(args.input, args, emb)
    if args.against:
        backlog, bvec, _ = _stream(args.against, args, emb)
        d = Deduper(emb, threshold=args.threshold).fit(backlog, embeddings=bvec)
        res = d.find(embeddings=vectors, k=min(args.k, len(backlog)), min_score=args.threshold)
        res.insert(0, "query_id", records["id"].to_numpy()[res["query"].to_numpy()] if len(res) else [])
        out = res.drop(columns="query").rename(columns={"id": "match_id", "text": "match_text"})
    else:
        out = Deduper(emb, threshold=args.threshold).fit(records, embeddings=vectors).groups()
    write_table(out, args.out)
    if len(rejected):
        write_table(rejected, Path(args.out).with_name(Path(args.out).stem + ".errors.csv"))
    _print_table(out)
    what = "matches" if args.against else f"members in {out['group'].nunique() if len(out) else 0} duplicate groups"
    print(f"\nwrote {len(out)} {what} to {args.out}; rows in: {len(records) + len(rejected)} = used: {len(records)} + errors: {len(rejected)}")
    return 0


def cmd_themes(args: argparse.Namespace) -> int:
    from .records import write_table
    from .themes import ThemeModel

    emb = _embedder(args)
    r, vectors, rejected = _stream(args.input, args, emb)
    tm = ThemeModel(emb, min_theme_size=args.min_theme_size, max_outlier_share=args.max_outlier_share)
    tm.fit(r["text"], timestamps=r.get("created_at"), accounts=r.get("account_id"), embeddings=vectors)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    themes = tm.themes_.assign(keywords=tm.themes_["keywords"].map(", ".join),
                               representatives=tm.themes_["representatives"].map(" || ".join))
    write_table(themes, out / "themes.csv")
    write_table(tm.assignments(ids=r["id"]), out / "assignments.csv")
    if "created_at" in r:
        write_table(tm.trends(args.freq), out / "trends.csv")
    write_table(rejected, out / "errors.csv")
    tm.save(out / "model")
    _print_table(themes[["id", "label", "size", "share"]])
    print(f"\n{len(themes)} themes, outlier share {tm.outlier_share_:.1%}; wrote {out}/themes.csv, assignments.csv"
          + (", trends.csv" if "created_at" in r else "") + f", errors.csv ({len(rejected)} rows)")
    return 0


# --- report --------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    summary = build_report(args.input, args.out, model=args.model, taxonomy=args.taxonomy, embedder=_embedder(args),
                           min_theme_size=args.min_theme_size, text_col=args.text_col, id_col=args.id_col,
                           format=args.format, encoding=args.encoding)
    _print_table(summary.top_themes[["theme", "label", "volume", "unique_accounts", "priority"]], 10)
    print(f"\n{summary.items} items, {summary.themes} themes, emerging: {', '.join(summary.emerging) or 'none'}")
    print(f"report: {summary.html}")
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


# --- backends -------------------------------------------------------------------------------------

def cmd_backends(args: argparse.Namespace) -> int:
    import pandas as pd

    from .backends import calibrate_backends

    result = calibrate_backends(args.embedding_model, repeats=args.repeats)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    table = pd.DataFrame([vars(r) for r in result.rows]).round(4)
    _print_table(table)
    print(f"\nauto now uses {result.choice} on this machine (measured in {result.seconds:.1f} s; "
          f"gate: mean cosine to torch fp32 >= 0.99)")
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

    p = sub.add_parser("train", help="train a tag model on labelled feedback")
    p.add_argument("--data", required=True, help="labelled CSV/Parquet/JSONL")
    p.add_argument("--text-col", default="text")
    p.add_argument("--label-col", default="label")
    p.add_argument("--multi-label", action="store_true", help="labels hold several tags joined by --sep")
    p.add_argument("--sep", default="|")
    p.add_argument("--taxonomy", default=None, help="taxonomy YAML/JSON (labels are checked against it)")
    p.add_argument("--zero-shot", action="store_true", help="no training: tag by similarity to the taxonomy")
    p.add_argument("--head", choices=["logreg", "finetune"], default="logreg")
    p.add_argument("--min-confidence", type=float, default=0.0)
    p.add_argument("--holdout", type=float, default=0.2, help="share held out to measure the card's metrics (0: none)")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--description", default="")
    p.add_argument("--out", required=True, help="model folder")
    _add_embedding_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a tag model on labelled data")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--text-col", default="text")
    p.add_argument("--label-col", default="label")
    p.add_argument("--sep", default="|")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("tag", help="tag a backlog file (streaming, resumable)")
    p.add_argument("--model", required=True, help="model folder or bundled name (e.g. request-type)")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--errors", default=None, help="rejected rows (default: <out>.errors.<ext>)")
    p.add_argument("--chunk-size", type=int, default=5000)
    p.add_argument("--resume", action="store_true", help="finish an interrupted run, reusing its chunks")
    p.add_argument("--text-col", default="text")
    p.add_argument("--id-col", default="id")
    p.add_argument("--engine", choices=["local", "dask"], default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--backend", default=None, choices=list(BACKENDS),
                   help="embedding backend (default: auto, resolved once and used by every worker)")
    p.add_argument("--cache", default=None)
    p.add_argument("--no-cache", action="store_true")
    _add_input_args(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("dedupe", help="duplicate groups in a file, or matches of a file against a backlog")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--against", default=None, help="backlog to match against")
    p.add_argument("--out", required=True)
    p.add_argument("--threshold", type=float, default=0.85)
    p.add_argument("--k", type=int, default=5)
    _add_stream_args(p)
    p.set_defaults(func=cmd_dedupe)

    p = sub.add_parser("themes", help="cluster feedback into named themes with trends")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--min-theme-size", type=int, default=10)
    p.add_argument("--max-outlier-share", type=float, default=0.15)
    p.add_argument("--freq", default="W", help="trend period (pandas frequency)")
    _add_stream_args(p)
    p.set_defaults(func=cmd_themes)

    p = sub.add_parser("report", help="the leadership report: report.html plus its tables")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None, help="tag model folder or bundled name (default: request-type)")
    p.add_argument("--taxonomy", default=None, help="zero-shot tagging with this taxonomy when no --model")
    p.add_argument("--min-theme-size", type=int, default=10)
    p.add_argument("--text-col", default="text")
    p.add_argument("--id-col", default=None)
    _add_input_args(p)
    _add_embedding_args(p)
    p.set_defaults(func=cmd_report)

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

    p = sub.add_parser("backends", help="measure the embedding backends here and store auto's choice")
    p.add_argument("--embedding-model", default=None, help="embedding model folder or name (default: bundled MiniLM)")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per backend (the best counts)")
    p.add_argument("--json", action="store_true", help="print the measurement as JSON")
    p.set_defaults(func=cmd_backends)

    from .integrations.quackback._cli import add_quackback_parser

    add_quackback_parser(sub)

    from .service._cli import add_parsers as add_service_parsers

    add_service_parsers(sub)  # serve, keys
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
