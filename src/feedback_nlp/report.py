"""``feedback-nlp report``: the leadership view of a backlog as one self-contained HTML page + its tables.

Pipeline: read and clean → embed (cached) → tag (a given model, zero-shot from a taxonomy, or the bundled
``request-type`` model) → duplicate groups → themes → demand scores → sentiment per theme and over time
(:mod:`~feedback_nlp.report_sentiment`) → charts (matplotlib, embedded as PNG data URIs) → ``report.html``
that opens from disk with no network, plus the CSV tables behind it.

Example:
    >>> summary = build_report("backlog.csv", "report_out")       # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ._atomic import OutputSet, distinct_paths
from ._config import DEFAULTS
from ._lock import output_lock
from ._optional import require
from .cleaning import _strip_invisible, redact_pii
from .dedupe import Deduper
from .embedding import BaseEmbedder, Embedder
from .errors import InvalidInputError, UsageError
from .records import read_feedback, to_utc_times, write_table
from .report_sentiment import SENTIMENTS, chart_text, load_tag_model, score_sentiment, sentiment_section
from .report_status import has_status, status_section
from .scoring import non_ask_themes, theme_scores
from .tagging import TagClassifier
from .taxonomy import Taxonomy
from .themes import ThemeModel
from .themes._model import check_freq

__all__ = ["REPORT_FILES", "ReportSummary", "build_report", "redact_frame"]

REPORT_FILES = ("report.html", "themes.csv", "items.csv", "duplicate_groups.csv", "needs_review.csv", "rejected.csv",
                "trends.csv", "tags_by_channel.csv", "status_by_theme.csv", "asked_vs_delivered.csv",
                "praise_themes.csv", "sentiment_by_theme.csv", "sentiment_over_time.csv")
SECTIONS = ("top-themes", "praise", "theme-trends", "sentiment", "tags-by-channel", "duplicates", "needs-review")


@dataclass
class ReportSummary:
    """What :func:`build_report` produced: paths and the headline numbers."""

    html: Path
    tables: dict[str, Path]
    items: int
    rejected: int
    themes: int
    emerging: list[str]
    top_themes: pd.DataFrame
    sentiment: dict[str, int]  # items per sentiment (positive, neutral, negative); unscored items not counted


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def redact_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with :func:`~feedback_nlp.cleaning.redact_pii` applied to every text cell and every list of
    texts (ids or account columns may hold e-mail addresses too).

    >>> redact_frame(pd.DataFrame({"a": ["mail jane@acme.io"], "n": [1]}))["a"].tolist()
    ['mail <EMAIL>']
    """
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].map(_redact_cell)
    return out


def _redact_cell(v: Any) -> Any:
    if isinstance(v, str):
        return redact_pii(v)
    if isinstance(v, (list, tuple)):
        return [redact_pii(x) if isinstance(x, str) else x for x in v]
    return v


#: An item tagged with a lower confidence needs review, whatever the tag model's own threshold.
REVIEW_BELOW = 0.5

#: The longest text a cell of the page's tables shows (the CSV tables keep every text whole): a theme of
#: 19,000-character items put a 36,000-character "examples" cell in the top-themes table.
HTML_CELL_CHARS = 300


def _cut(value: Any) -> Any:
    if value is None:  # a column of no values at all (no status change dated) showed "None" in every cell
        return ""
    if not isinstance(value, str):
        return value
    value = _strip_invisible(value)  # see _page_text
    return value[:HTML_CELL_CHARS] + "…" if len(value) > HTML_CELL_CHARS else value


def _page_text(text: str) -> str:
    """``text`` escaped for the page, without the direction controls and zero-width characters that would make it
    read as another text (a title or a raw cell holding "\u202e" showed "Report \u202eevil" as "Report live")."""
    return html.escape(_strip_invisible(text))


def _chart_names(labels: Any) -> list[str]:
    """Tag or channel names as a chart shows them (:func:`chart_text`), numbered where two would read the same
    (two Chinese tag names both drawn as "…").

    >>> _chart_names(["bug", "错误", "功能"])
    ['bug', '… (1)', '… (2)']
    """
    names = [chart_text(lbl) for lbl in labels]
    seen = Counter(names)
    count: dict[str, int] = {}
    out = []
    for n in names:
        if seen[n] > 1:
            count[n] = count.get(n, 0) + 1
            n = f"{n} ({count[n]})"
        out.append(n)
    return out


def _table(df: pd.DataFrame, max_rows: int = 15) -> str:
    """The first ``max_rows`` rows of ``df`` as an HTML table, redacted and escaped, saying so when rows are left
    out (a page that listed 20 of 120 items needing review read as if those were all)."""
    shown = redact_frame(df.head(max_rows))
    for col in shown.columns:
        if shown[col].dtype == object or str(shown[col].dtype) in ("str", "string"):
            shown[col] = shown[col].map(_cut)
    shown.columns.name = None  # a crosstab's "col_0" or a pivot's "tags" was drawn as a header row of its own
    note = f"<p>The first {max_rows} of {len(df)} rows; the CSV table holds them all.</p>" if len(df) > max_rows else ""
    return shown.to_html(index=False, escape=True, border=0, classes="t", na_rep="") + note


def build_report(
    source: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    taxonomy: str | os.PathLike | Taxonomy | None = None,
    embedder: BaseEmbedder | None = None,
    min_theme_size: int = 10,
    dedupe_threshold: float = DEFAULTS.dedupe_threshold,
    freq: str = "W",
    title: str = "Customer feedback report",
    raw_csv: bool = False,
    sentiment: str | os.PathLike | None = "sentiment",
    **read_kwargs: Any,
) -> ReportSummary:
    """Build ``report.html`` and its tables from a backlog file or DataFrame.

    Tagging uses ``model`` if given, else zero-shot with ``taxonomy``, else the bundled ``request-type``.
    Sentiment (per theme and over time) comes from the input's ``sentiment`` column where it has one, else
    from the ``sentiment`` tag model (default: the bundled one; ``None``: the input column only); see
    :mod:`feedback_nlp.report_sentiment`.
    Every text cell of every output is PII-redacted as the cleaner would (rejected rows included), CSV
    formulas are neutralised unless ``raw_csv``, and the outputs appear together or not at all.
    """
    mpl = require("matplotlib", "report", "the HTML report")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(out_dir, (str, os.PathLike)):  # None was pathlib's TypeError
        raise InvalidInputError(f"out_dir must be a folder path, got {type(out_dir).__name__}")
    out = Path(out_dir)
    if not isinstance(title, str):  # None was an AttributeError after all the work
        raise InvalidInputError(f"title must be a string, got {type(title).__name__}")
    if out.exists() and not out.is_dir():  # was FileExistsError once every table and chart was made
        raise UsageError(f"{out} is a file; the report needs a folder for report.html and its tables")
    # the settings used at the end are checked before the reading, embedding and tagging (they failed after)
    freq = check_freq(freq)
    ThemeModel(embedder, min_theme_size=min_theme_size)._validate_params()
    Deduper(embedder, threshold=dedupe_threshold)._validate_params()
    _check_report_paths(out, source, taxonomy)
    # one run per report folder: two runs' renames interleaved left one run's tables beside the other's page
    inputs = {"source": None if isinstance(source, pd.DataFrame) else source, "model": model,
              "taxonomy": None if isinstance(taxonomy, Taxonomy) else taxonomy}
    with output_lock(out, inputs, name="report folder"):
        return _build_report(source, out, model=model, taxonomy=taxonomy, embedder=embedder,
                             min_theme_size=min_theme_size, dedupe_threshold=dedupe_threshold, freq=freq, title=title,
                             raw_csv=raw_csv, sentiment=sentiment, plt=plt, read_kwargs=read_kwargs)


def _future_note(created: pd.Series) -> str:
    """A paragraph for items dated after the run (a typo such as 2036 for 2026), or ``""``: the trends and the
    recent/previous windows of the scores end at the latest date, so one such item left every other theme with no
    recent items, and ten years of empty weeks in trends.csv, without a word."""
    times = to_utc_times(created)[0]
    future = times[times > pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)]  # a day: any time zone's today
    if future.empty:
        return ""
    many = len(future) > 1
    return (f"<p><strong>{len(future)} item{'s are' if many else ' is'} dated after today</strong> (the latest "
            f"{future.max():%Y-%m-%d}): the trends and the recent growth of every theme are measured up to that date. "
            f"Check {'their' if many else 'its'} created_at (items.csv lists them).</p>")


def _kept_name(column: str, columns: Any) -> str:
    """The name the input's own ``column`` is kept under beside the report's: ``<column>_input``, or
    ``<column>_input_2`` ... where the input has that too (a report's items.csv read back: its ``tags`` were
    overwritten, since ``tags_input`` was taken).

    >>> _kept_name("tags", ["tags", "tags_input"])
    'tags_input_2'
    """
    taken = set(map(str, columns))
    name, n = f"{column}_input", 2
    while name in taken:
        name, n = f"{column}_input_{n}", n + 1
    return name


def _check_report_paths(out: Path, source: Any, taxonomy: Any) -> None:
    """Refuse, before any work, a folder in the place of one of the report's files and an input file that is one
    of them: ``build_report("r/items.csv", "r")`` replaced the backlog with the report's items.csv, and an input
    named ``r/trends.csv`` was deleted as an earlier report's stale table (the CLI's ``--in`` was checked, a call
    from Python was not)."""
    # several inputs, each a path or a (path, format) pair (a format names no report file)
    given = list(source) if isinstance(source, (list, tuple)) else [source]
    inputs = {f"input {i + 1}" if len(given) > 1 else "input": s[0] if isinstance(s, tuple) else s
              for i, s in enumerate(given)}
    inputs["taxonomy"] = taxonomy
    named = {k: v for k, v in inputs.items() if isinstance(v, (str, os.PathLike))}
    outputs = {fname: out / fname for fname in REPORT_FILES}
    folder = next((path for path in outputs.values() if path.is_dir()), None)
    if folder is not None:  # found at the last rename, after items.csv and five other tables were already replaced
        raise UsageError(f"{folder} is a folder where the report writes a file; move or rename it")
    clash = next(((a, b) for a, b in distinct_paths(**named, **outputs) if a in named and b in outputs), None)
    if clash is not None:
        raise UsageError(f"the {clash[0]} {named[clash[0]]} is the report's own {clash[1]} in {out}, which the "
                         "report replaces or removes; choose another out_dir or move the input")


def _build_report(source: str | os.PathLike | pd.DataFrame, out: Path, *, model: str | os.PathLike | None,
                  taxonomy: str | os.PathLike | Taxonomy | None, embedder: BaseEmbedder | None, min_theme_size: int,
                  dedupe_threshold: float, freq: str, title: str, raw_csv: bool,
                  sentiment: str | os.PathLike | None, plt: Any, read_kwargs: dict[str, Any]) -> ReportSummary:
    fb = read_feedback(source, unknown_source=read_kwargs.pop("unknown_source", "other"), **read_kwargs)
    records = fb.records.reset_index(drop=True)
    if len(records) == 0:
        from .records import no_usable_rows

        raise no_usable_rows(source if isinstance(source, (str, os.PathLike)) else "the input", fb.rejected)
    embedder = embedder or Embedder(cache=True)
    vectors = embedder.encode(records["text"].tolist())

    if model is not None:
        clf = TagClassifier.load(model, embedder=embedder)
    elif taxonomy is not None:
        tax = taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.load(taxonomy)
        clf = TagClassifier(embedder, tax, zero_shot=True, min_confidence=0.0).fit(None)
    else:
        clf = load_tag_model("request-type", embedder)
    # a fine-tuned model (LoRA adapter) embeds with its own encoder: the base vectors would be wrong for it
    # (the texts go with the vectors: a model with a lexical channel reads the words too)
    tags = (clf.tag(vectors, ids=records["id"], texts=records["text"]) if clf.embedder_ is embedder else
            clf.tag(records["text"], ids=records["id"]))
    leaf = set(map(str, clf.classes_))
    tags["tags"] = tags["tags"].map(lambda ts: [t for t in ts if t in leaf])
    # the input's own columns of these names (a tags column from another tool) were overwritten without a word:
    # they stay, as <name>_input (<name>_input_2 where that is taken too), like the input's sentiment
    own = {c: _kept_name(c, records.columns) for c in ("tags", "confidence", "needs_review", "theme", "theme_label",
                                                       "sentiment_source") if c in records.columns}
    items = records.rename(columns=own).assign(tags=tags["tags"].to_numpy(), confidence=tags["confidence"].to_numpy(),
                                               needs_review=tags["needs_review"].to_numpy())

    tm = ThemeModel(embedder, min_theme_size=min_theme_size).fit(
        records["text"], timestamps=records.get("created_at"), accounts=records.get("account_id"), embeddings=vectors)
    # redacted here, not only in the tables: the names are drawn into the charts, cut to 40 characters there (a
    # cut e-mail address is no longer one), and listed as emerging; read with clean=False, a theme named from
    # "mail jane.doe@acme.io" showed the address in the page's Emerging line and its charts
    names = {i: redact_pii(str(label)) for i, label in zip(tm.themes_["id"], tm.themes_["label"])}
    items["theme"] = tm.labels_
    items["theme_label"] = [names.get(int(t), "outlier") for t in tm.labels_]
    scored = score_sentiment(items, vectors, sentiment, embedder)
    if "sentiment" in items:  # the input's own column (lower case) stays as it was, beside the sentiment used
        items[_kept_name("sentiment", items.columns)] = items["sentiment"]
    items["sentiment"], items["sentiment_source"] = scored.sentiment, scored.source
    # a created_at column with no date in it (an empty export column) is no time line: its trends stopped
    # the report with "none of this model's items has a date"
    has_time = "created_at" in records and bool(records["created_at"].notna().any())
    score_args: dict[str, Any] = dict(account_col="account_id" if "account_id" in items else None,
                      revenue_col="account_revenue" if "account_revenue" in items and "account_id" in items else None,
                      time_col="created_at" if has_time else None)
    # praise and thanks ask for nothing: shown on their own, not ranked against bugs and requests
    praise = non_ask_themes(items)
    scores = theme_scores(items[~items["theme"].isin(praise)], **score_args)
    praise_scores = theme_scores(items[items["theme"].isin(praise)], **score_args)
    praise_scores.insert(1, "label", praise_scores["theme"].map(names))
    info = tm.themes_.set_index("id")
    scores.insert(1, "label", scores["theme"].map(names))
    scores["examples"] = scores["theme"].map(lambda t: " | ".join(map(redact_pii, info.loc[t, "representatives"][:2])))
    emerging = tm.emerging_themes(freq) if has_time else []
    scores["emerging"] = scores["theme"].isin(emerging)
    groups = Deduper(embedder, threshold=dedupe_threshold).fit(records, embeddings=vectors).groups()
    # the page and needs_review.csv list the tagger's flags and every item under 0.5 confidence: items.csv's column
    # said False for those (22 items "needing review" on the page, none in items.csv)
    items["needs_review"] = items["needs_review"] | (items["confidence"] < REVIEW_BELOW)
    review = items[items["needs_review"]].sort_values("confidence")

    frames = {
        "themes": (scores, "themes.csv"),
        "items": (items.drop(columns=["raw_text"], errors="ignore"), "items.csv"),
        "duplicate_groups": (groups, "duplicate_groups.csv"),
        "needs_review": (review[["id", "text", "tags", "confidence"]], "needs_review.csv"),
        "praise_themes": (praise_scores, "praise_themes.csv"),
        "rejected": (fb.rejected, "rejected.csv"),  # redacted by the reader, and again by redact_frame
    }
    charts: dict[str, str] = {}
    top = scores.head(12).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1))
    ax.barh([chart_text(f"#{t} {lbl[:40]}") for t, lbl in zip(top["theme"], top["label"])], top["priority"],
            color=["#d9480f" if e else "#1c7ed6" for e in top["emerging"]])
    ax.set_xlabel("priority score (0-100)")
    ax.set_title("Top themes by priority (orange: emerging)")
    charts["top-themes"] = _png(fig)
    trends = None
    if has_time:
        trends = tm.trends(freq)
        frames["trends"] = (trends, "trends.csv")
        show = list(dict.fromkeys(list(emerging) + scores["theme"].head(6).tolist()))[:8]
        one_period = trends["period"].nunique() == 1
        fig, ax = plt.subplots(figsize=(9, 4))
        for t in show:
            series = trends[trends["theme"] == t]
            # a marker for one period: a line through a single point drew nothing, beside a legend
            ax.plot(series["period"], series["count"], lw=3 if t in emerging else 1.2, marker="o" if one_period else None,
                    label=chart_text(f"#{t} {names.get(t, '')[:30]}" + (" (emerging)" if t in emerging else "")))
        ax.set_ylabel(f"items per period ({freq})")
        ax.set_title("Theme volume over time")
        if show:  # no theme at all (a small input): no legend, and no matplotlib warning on stderr
            ax.legend(fontsize=7, loc="upper left")
        fig.autofmt_xdate()
        charts["theme-trends"] = _png(fig)
    by_channel = items.explode("tags").dropna(subset=["tags"]).groupby(["source", "tags"]).size().unstack(fill_value=0)
    frames["tags_by_channel"] = (by_channel.reset_index(), "tags_by_channel.csv")
    fig, ax = plt.subplots(figsize=(8, 4))
    if by_channel.size:  # pandas cannot plot an empty frame (no item got a tag): an empty chart instead
        by_channel.set_axis(_chart_names(by_channel.columns), axis=1).set_axis(_chart_names(by_channel.index)).plot(
            kind="bar", stacked=True, ax=ax, colormap="tab20")
        ax.legend(fontsize=7, ncol=2)
    ax.set_ylabel("items")
    ax.set_title("Tag distribution by channel")
    charts["tags-by-channel"] = _png(fig)

    senti = sentiment_section(items, freq=freq, png=_png, table=_table,
                              note=scored.note + (f" The {len(fb.rejected)} rejected rows (rejected.csv) are not "
                                                  "scored." if len(fb.rejected) else ""))
    frames["sentiment_by_theme"] = (senti.by_theme, "sentiment_by_theme.csv")
    if len(senti.over_time):
        frames["sentiment_over_time"] = (senti.over_time, "sentiment_over_time.csv")

    status = None
    if has_status(items):  # the team's response, when the items carry a status (Quackback, a help desk, a column)
        status = status_section(items, scores.set_index("theme")["priority"], freq=freq, png=_png, table=_table)
        frames["status_by_theme"] = (status.by_theme, "status_by_theme.csv")
        frames["asked_vs_delivered"] = (status.asked_vs_delivered, "asked_vs_delivered.csv")

    def section(sid: str, title_: str, body: str) -> str:
        return f'<section id="{sid}"><h2>{html.escape(title_)}</h2>{body}</section>'

    top_cols = [c for c in ["theme", "label", "volume", "unique_accounts", "revenue", "growth", "priority", "emerging", "examples"] if c in scores]
    body = [
        section("top-themes", "Top themes by priority",
                f'<img alt="top themes chart" src="{charts["top-themes"]}">' + _table(scores[top_cols].round(2), 15)),
        section("praise", f"Praise and thanks, not ranked ({len(praise_scores)} themes)",
                _table(praise_scores[[c for c in ["theme", "label", "volume", "unique_accounts"] if c in praise_scores]], 10)
                if len(praise_scores) else "<p>None.</p>"),
        section("theme-trends", "Theme volume over time",
                (f'<img alt="theme trends chart" src="{charts["theme-trends"]}">' if "theme-trends" in charts else
                 "<p>No timestamps in the input.</p>")
                + ("<p>One period only: a trend needs items from more than one period.</p>"
                   if trends is not None and trends["period"].nunique() == 1 else "")
                + ("<p>Emerging: " + _page_text(", ".join(f"#{t} {names.get(t, '')}" for t in emerging) or "none") + "</p>")),
        senti.html,
        section("tags-by-channel", "Tags by channel",
                f'<img alt="tags by channel chart" src="{charts["tags-by-channel"]}">' + _table(by_channel.reset_index(), 10)),
        section("duplicates", f"Duplicate groups ({groups['group'].nunique() if len(groups) else 0})",
                _table(groups[groups["is_representative"]].merge(groups.groupby("group").size().rename("size").reset_index(), on="group")
                       .sort_values("size", ascending=False)[["group", "size", "id", "text"]], 15) if len(groups) else "<p>None found.</p>"),
        section("needs-review", f"Items needing review ({len(review)})",
                _table(review[["id", "text", "tags", "confidence"]].assign(tags=review["tags"].map(", ".join)), 20)),
    ]
    if status is not None:
        body.append(status.html)
    head = (f"<p>{len(records)} items ({len(fb.rejected)} rejected), {records['source'].nunique()} channels, "
            f"{len(tm.themes_)} themes ({tm.outlier_share_:.0%} unassigned). Tagging: {html.escape(type(clf).__name__)} "
            f"over {len(leaf)} tags. Tables: {', '.join(f for _, f in frames.values())}.</p>"
            + (_future_note(records["created_at"]) if has_time else ""))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_page_text(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>
body{{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#212529}}
h1{{margin-bottom:.2rem}} h2{{border-bottom:2px solid #dee2e6;padding-bottom:.3rem;margin-top:2.2rem}}
img{{max-width:100%}} table.t{{border-collapse:collapse;font-size:13px;width:100%;margin-top:.8rem}}
table.t th,table.t td{{border-bottom:1px solid #e9ecef;padding:4px 6px;text-align:left;vertical-align:top}}
h1,table.t td{{unicode-bidi:plaintext}}
table.t th{{background:#f1f3f5}}
</style></head>
<body><h1>{_page_text(title)}</h1>{head}
{''.join(body)}
<footer><p>Generated by feedback_nlp. Works offline; no external resources.</p></footer></body></html>"""
    tables = {name: out / fname for name, (_, fname) in frames.items()}
    with OutputSet() as outs:
        for df, fname in frames.values():
            write_table(redact_frame(df), outs.file(out / fname), raw_csv=raw_csv)
        outs.file(out / "report.html").write_text(page, encoding="utf-8")
        written = {fname for _, fname in frames.values()}
        for fname in REPORT_FILES[1:]:  # an earlier report's trends or status tables would pass for this one's
            if fname not in written:
                outs.stale(out / fname)
    return ReportSummary(out / "report.html", tables, len(records), len(fb.rejected), len(tm.themes_),
                         [names.get(t, str(t)) for t in emerging], scores[top_cols].head(10),
                         items["sentiment"].value_counts().reindex(list(SENTIMENTS), fill_value=0).to_dict())


