"""The report's "Sentiment" section: positive / neutral / negative per theme and over time.

Each item's sentiment comes from a ``sentiment`` column the input already has (a Quackback pull, a survey
tool's score: ``positive``/``neutral``/``negative``, ``pos``/``neu``/``neg`` or -1/0/1), and for items without
one from a sentiment tag model (by default the bundled ``sentiment`` model). Per theme: ``n`` and the share of
each sentiment; per period: how many items were negative / positive and their shares.

Example:
    >>> import pandas as pd
    >>> items = pd.DataFrame({"theme": [0, 0, 0, 1], "theme_label": ["export", "export", "export", "sso"],
    ...     "sentiment": ["negative", "negative", "positive", "neutral"],
    ...     "created_at": pd.to_datetime(["2026-01-05", "2026-01-06", "2026-01-14", "2026-01-14"], utc=True)})
    >>> sentiment_by_theme(items)[["theme", "n", "positive", "neutral", "negative"]].to_dict("records")[0]
    {'theme': 0, 'n': 3, 'positive': 0.3333, 'neutral': 0.0, 'negative': 0.6667}
    >>> sentiment_over_time(items, "W")[["period", "n", "negative", "positive"]].to_dict("records")[1]
    {'period': Timestamp('2026-01-12 00:00:00'), 'n': 2, 'negative': 0, 'positive': 1}
"""

from __future__ import annotations

import functools
import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .embedding import BaseEmbedder
from .errors import InvalidInputError, ModelMismatchError, ModelNotFoundError
from .records import to_utc_times
from .themes._model import bounded_period_range

__all__ = ["SENTIMENTS", "SENTIMENT_SECTION", "SentimentScores", "SentimentSection", "chart_text", "given_sentiment",
           "load_tag_model", "score_sentiment", "sentiment_by_theme", "sentiment_column", "sentiment_over_time",
           "sentiment_section"]

SENTIMENTS = ("positive", "neutral", "negative")
SENTIMENT_SECTION = "sentiment"
_ALIASES = {"positive": "positive", "pos": "positive", "neutral": "neutral", "neu": "neutral",
            "negative": "negative", "neg": "negative", "1": "positive", "0": "neutral", "-1": "negative"}
_PERIODS_SHOWN = 60  # rows of the page's sentiment-over-time table (the chart and the CSV table have every period)
_COLORS = {"positive": "#2b8a3e", "neutral": "#adb5bd", "negative": "#c92a2a"}


def chart_text(text: Any) -> str:
    r"""``text`` as matplotlib shows it literally: ``$`` starts TeX math there, and a theme named from
    feedback such as ``refund $\x$`` made the whole report fail.

    >>> print(chart_text("costs $5 or $10"))
    costs \$5 or \$10

    Characters the chart cannot draw become "…" (the page's tables beside the chart show the text itself): those
    of the chart font's missing glyphs (Chinese in DejaVu Sans drew empty boxes, with one warning per character on
    stderr), and those of scripts matplotlib draws wrongly, as it lays text out left to right one glyph per
    character without shaping (Arabic and Hebrew came out reversed and unjoined: a label that lied).

    >>> print(chart_text("#3 تسجيل الدخول (n=4)"))
    #3 … (n=4)
    """
    out = str(text).replace("$", r"\$")
    if out.isascii():
        return out
    drawable = _chart_glyphs()
    out = "".join(ch if ch.isspace() or (ord(ch) in drawable and not _UNSHAPED.match(ch)) else "\x00" for ch in out)
    return re.sub(r"\x00(?:\W*\x00)?", "…", out)


# Scripts that need right-to-left layout or shaping (Hebrew, Arabic, Syriac, Thaana, the Indic scripts, Thai, Lao,
# Tibetan, Myanmar, Khmer, Arabic presentation forms), which matplotlib's text layout does not do.
_UNSHAPED = re.compile("[\u0590-\u08ff\u0900-\u0eff\u0f00-\u109f\u1780-\u17ff\ufb1d-\ufdff\ufe70-\ufeff]")


@functools.cache
def _chart_glyphs() -> frozenset[int]:
    """The code points the chart font (matplotlib's default text font) has glyphs for."""
    from matplotlib import font_manager

    return frozenset(font_manager.get_font(font_manager.findfont(font_manager.FontProperties())).get_charmap())


def given_sentiment(values: pd.Series) -> pd.Series:
    """The sentiment an input column states, per item: one of :data:`SENTIMENTS`, or missing where the
    cell is empty or says something else (``"mixed"``, free text).

    Numbers count only when every number in the column is -1, 0 or 1: a 1–5 star rating is not a sentiment
    code (its 1 is the worst score), so such a column's numbers are left to the model.

    >>> given_sentiment(pd.Series(["Positive", " neg", -1, "mixed", None])).tolist()
    ['positive', 'negative', 'negative', nan, nan]
    >>> given_sentiment(pd.Series([1, 5, 3, "neutral"])).tolist()
    [nan, nan, nan, 'neutral']
    """
    def number(v: Any) -> float | None:
        if isinstance(v, bool) or v is None:
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    numbers = {x for x in map(number, values) if x is not None and not np.isnan(x)}
    codes_ok = numbers <= {-1.0, 0.0, 1.0}

    def one(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return np.nan  # True/False say nothing about which sentiment
        x = number(v)
        if x is None:
            return _ALIASES.get(str(v).strip().lower(), np.nan)
        return _ALIASES[str(int(x))] if codes_ok and not np.isnan(x) else np.nan

    return values.map(one).astype(object)


def sentiment_column(items: pd.DataFrame) -> str | None:
    """The input's sentiment column: the one named ``sentiment`` in any case (``Sentiment``), else ``None``."""
    return next((c for c in items.columns if str(c).strip().lower() == "sentiment"), None)


@dataclass
class SentimentScores:
    """Per item: ``sentiment`` (missing where nothing could score it) and ``source`` (``input``/``model``),
    plus ``note``: one sentence for the page on where the sentiments came from, or why there are none."""

    sentiment: pd.Series
    source: pd.Series
    note: str


def load_tag_model(model: str | os.PathLike, embedder: BaseEmbedder) -> Any:
    """``TagClassifier.load(model, embedder=embedder)``; but a *bundled* model (``request-type``,
    ``sentiment``) built on another embedding model than ``embedder`` (a team's own model) is loaded with
    its own embedding model, and embeds the texts itself. A model folder the user named must match."""
    from .tagging import TagClassifier, bundled_models

    try:
        return TagClassifier.load(model, embedder=embedder)
    except ModelMismatchError:
        if str(model) not in bundled_models() or os.path.isdir(model):
            raise
        return TagClassifier.load(model)


def _sentiment_model(model: str | os.PathLike, embedder: BaseEmbedder) -> Any:
    clf = load_tag_model(model, embedder)
    classes = {str(c) for c in clf.classes_}
    if classes != set(SENTIMENTS) or clf.multi_label_:
        raise InvalidInputError(f"the sentiment model {str(model)!r} must be single-label with exactly the tags "
                                f"{', '.join(SENTIMENTS)}; it has {', '.join(sorted(classes))}"
                                + (" (multi-label)" if clf.multi_label_ else ""))
    return clf


def score_sentiment(items: pd.DataFrame, vectors: np.ndarray, model: str | os.PathLike | None,
                    embedder: BaseEmbedder) -> SentimentScores:
    """Each item's sentiment: the input's ``sentiment`` column where it states one, else ``model``'s
    prediction from the item's ``vectors`` (embedded by ``embedder``), or from its ``text`` when the model is
    fine-tuned (it embeds with its own encoder).

    ``model`` is a tag model folder or bundled name, or ``None`` for the input column only. The default
    bundled ``"sentiment"`` may be missing from an install: then the note says so and items without a
    given sentiment stay unscored. A model the user named that does not exist raises
    :class:`~feedback_nlp.errors.ModelNotFoundError`; one whose tags are not positive/neutral/negative,
    :class:`~feedback_nlp.errors.InvalidInputError`.
    """
    column = sentiment_column(items)
    given = given_sentiment(items[column]) if column is not None else pd.Series(np.nan, index=items.index, dtype=object)
    source = pd.Series(None, index=items.index, dtype=object).where(given.isna(), "input")
    missing = given.isna().to_numpy()
    n_given = int((~missing).sum())
    if column is None:
        origin = "No sentiment column in the input"
    elif n_given == 0:
        origin = f"The input's {column} column names no sentiment (positive, neutral or negative)"
    else:
        origin = f"{n_given} of {len(items)} items carry a sentiment in the input's {column} column"
    rest = "the others" if n_given else "items"
    if not missing.any():
        return SentimentScores(given, source, origin + ".")
    if model is None:
        return SentimentScores(given, source, f"{origin}; no sentiment model was asked for, so {rest} are not scored.")
    from .tagging import bundled_models

    if str(model) == "sentiment" and "sentiment" not in bundled_models() and not os.path.isdir(model):
        return SentimentScores(given, source, f"{origin}; {rest} are not scored: this install has no bundled "
                               "sentiment model (pass a sentiment model folder, or add a sentiment column).")
    try:
        clf = _sentiment_model(model, embedder)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"sentiment model: {exc}") from None
    # a fine-tuned model (LoRA adapter) embeds with its own encoder: the base vectors would be wrong for it
    texts = items["text"][missing].tolist()
    raw = pd.Series(clf.predict(vectors[missing], texts=texts) if clf.embedder_ is embedder else
                    clf.predict(texts), index=items.index[missing], dtype=object)
    # a model saved with min_confidence > 0 abstains with None: .astype(str) made that the sentiment "None"
    abstained = raw.isna()
    predicted = raw.map(str).where(~abstained)
    sentiment = given.copy()
    sentiment[missing] = predicted
    source[missing] = ["model" if not a else None for a in abstained]
    name = os.path.basename(os.path.normpath(str(model)))
    unsure = f"; it abstained on {int(abstained.sum())}, which stay unscored" if abstained.any() else ""
    return SentimentScores(sentiment, source, f"{origin}; {'the other ' if n_given else ''}{int(missing.sum())} "
                                              f"items are scored by the {name} model{unsure}.")


def _shares_summing_to_one(counts: pd.DataFrame, n: pd.Series, places: int = 4) -> pd.DataFrame:
    """Each row's counts as shares rounded to ``places`` decimals that still sum to exactly 1 (largest
    remainder: rounding each share alone made three thirds 0.9999)."""
    unit = 10 ** places
    exact = counts.to_numpy(dtype=float) * unit / n.to_numpy(dtype=float)[:, None]
    whole = np.floor(exact)
    short = (unit - whole.sum(axis=1)).round().astype(int)
    order = np.argsort(-(exact - whole), axis=1, kind="stable")  # ties: the column order
    for i, k in enumerate(short):
        whole[i, order[i, :k]] += 1
    return pd.DataFrame(whole / unit, index=counts.index, columns=counts.columns)


def sentiment_by_theme(items: pd.DataFrame, *, theme_col: str = "theme", label_col: str = "theme_label") -> pd.DataFrame:
    """Per theme: ``n`` (items with a sentiment), the share ``positive``/``neutral``/``negative`` (4 decimals,
    summing to 1) and ``net`` (positive minus negative share); most items first, unscored items left out."""
    df = pd.DataFrame({"theme": items[theme_col].to_numpy(),
                       "label": items[label_col].to_numpy() if label_col in items else items[theme_col].astype(str).to_numpy(),
                       "sentiment": items["sentiment"].to_numpy()})
    df = df[df["sentiment"].isin(SENTIMENTS)]
    cols = ["theme", "label", "n", *SENTIMENTS, "net"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    counts = pd.crosstab([df["theme"], df["label"]], df["sentiment"]).reindex(columns=list(SENTIMENTS), fill_value=0)
    n = counts.sum(axis=1)
    out = _shares_summing_to_one(counts, n)
    out.insert(0, "n", n)
    out["net"] = (out["positive"] - out["negative"]).round(4)
    out = out.reset_index()
    out.columns.name = None
    return out[cols].sort_values(["n", "theme"], ascending=[False, True], kind="stable").reset_index(drop=True)


def sentiment_over_time(items: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """Per period (pandas frequency ``freq``: D, W, M, Q, Y) from the first dated item to the last: ``n``,
    the counts ``negative``/``neutral``/``positive`` and ``share_negative``/``share_positive`` (empty for a
    period without items). Items without a date or a sentiment are left out; no dated items: an empty frame."""
    cols = ["period", "n", "negative", "neutral", "positive", "share_negative", "share_positive"]
    if "created_at" not in items:
        return pd.DataFrame(columns=cols)
    ts = to_utc_times(items["created_at"])[0]  # unparseable: left out, like undated items
    ok = ts.notna() & items["sentiment"].isin(SENTIMENTS)
    if not ok.any():
        return pd.DataFrame(columns=cols)
    try:
        periods = ts[ok].dt.tz_convert(None).dt.to_period(freq)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"freq must be a period such as D, W, M, Q or Y (pandas frequency); got {freq!r} "
                                f"({exc})") from None
    counts = (pd.crosstab(periods.to_numpy(), items["sentiment"][ok].to_numpy())
              .reindex(columns=["negative", "neutral", "positive"], fill_value=0))
    full = bounded_period_range(periods.min(), periods.max(), freq)
    counts = counts.reindex(full, fill_value=0)
    n = counts.sum(axis=1)
    out = counts.assign(n=n, share_negative=(counts["negative"] / n.where(n > 0)).round(4),
                        share_positive=(counts["positive"] / n.where(n > 0)).round(4))
    out.index = out.index.to_timestamp()
    return out.rename_axis("period").reset_index()[cols]


@dataclass
class SentimentSection:
    """The section's HTML, its two tables and its charts (PNG data URIs; a chart is absent when there is
    nothing to draw)."""

    html: str
    by_theme: pd.DataFrame
    over_time: pd.DataFrame
    charts: dict[str, str]


def _theme_chart(by_theme: pd.DataFrame, png: Callable[[Any], str]) -> str:
    import matplotlib.pyplot as plt

    top = by_theme.head(12).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.5))
    names = [chart_text(f"#{t} {str(lbl)[:36]} (n={n})") for t, lbl, n in zip(top["theme"], top["label"], top["n"])]
    left = np.zeros(len(top))
    for s in SENTIMENTS:
        ax.barh(names, top[s], left=left, color=_COLORS[s], label=s)
        left += top[s].to_numpy(dtype=float)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the theme's items")
    ax.set_title("Sentiment per theme (largest themes)", pad=22)
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return png(fig)


def _time_chart(over_time: pd.DataFrame, freq: str, png: Callable[[Any], str]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for col, s in (("share_negative", "negative"), ("share_positive", "positive")):
        # markers: a single period (or periods between gaps) would otherwise draw nothing
        ax.plot(over_time["period"], over_time[col], lw=2, marker="o", color=_COLORS[s], label=f"share {s}")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"share of the period's items ({freq})")
    ax.set_title("Sentiment over time")
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    return png(fig)


def sentiment_section(items: pd.DataFrame, *, note: str, freq: str = "W", png: Callable[[Any], str],
                      table: Callable[[pd.DataFrame, int], str]) -> SentimentSection:
    """Build the section from items with ``theme``, ``theme_label``, ``sentiment`` (and ``created_at`` for the
    trend); ``note`` says where the sentiments came from (see :func:`score_sentiment`)."""
    by_theme = sentiment_by_theme(items)
    over_time = sentiment_over_time(items, freq)
    scored = items["sentiment"].isin(SENTIMENTS)
    charts: dict[str, str] = {}
    parts = [f"<p>{html.escape(note)}</p>"]
    if scored.any():
        shares = items.loc[scored, "sentiment"].value_counts(normalize=True)
        parts.append(f"<p>{int(scored.sum())} items with a sentiment: "
                     + ", ".join(f"{shares.get(s, 0):.0%} {s}" for s in SENTIMENTS) + ".</p>")
        charts["sentiment-by-theme"] = _theme_chart(by_theme, png)
        parts.append(f'<img alt="sentiment per theme chart" src="{charts["sentiment-by-theme"]}">')
        shown = by_theme.assign(**{s: by_theme[s].map("{:.0%}".format) for s in SENTIMENTS},
                                net=by_theme["net"].map("{:+.0%}".format))
        parts.append("<h3>Sentiment per theme</h3>" + table(shown, 20)
                     + "<p>Shares of a theme with few items (small n) move a lot with one item.</p>")
        parts.append("<h3>Sentiment over time</h3>")
        if len(over_time):
            charts["sentiment-over-time"] = _time_chart(over_time, freq, png)
            undated = int(scored.sum() - over_time["n"].sum())
            # the latest periods: the first 60 of ten years of months hid the last five years
            recent = over_time.tail(_PERIODS_SHOWN)
            parts.append(f'<img alt="sentiment over time chart" src="{charts["sentiment-over-time"]}">'
                         + table(recent.assign(period=recent["period"].dt.strftime("%Y-%m-%d"),
                                               share_negative=recent["share_negative"].map(_pct),
                                               share_positive=recent["share_positive"].map(_pct)), _PERIODS_SHOWN)
                         + (f"<p>The last {_PERIODS_SHOWN} of {len(over_time)} periods; sentiment_over_time.csv holds "
                            "them all.</p>" if len(over_time) > _PERIODS_SHOWN else "")
                         + (f"<p>{undated} items without a date are left out of the trend.</p>" if undated else "")
                         + ("<p>One period only: a trend needs items from more than one period.</p>"
                            if len(over_time) == 1 else ""))
        else:
            parts.append("<p>No timestamps in the input (a created_at column): no trend over time.</p>")
    body = "".join(parts)
    section = f'<section id="{SENTIMENT_SECTION}"><h2>Sentiment</h2>{body}</section>'
    return SentimentSection(section, by_theme, over_time, charts)


def _pct(v: float) -> str:
    return "" if pd.isna(v) else f"{v:.0%}"
