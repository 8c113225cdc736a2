"""The report's "How the team is responding" section, built when the items carry a ``status`` column.

Statuses from any tool (Quackback, a help desk, a ``status`` column in a file) are mapped onto five stages
(open, planned, in progress, shipped, declined; see
:func:`~feedback_nlp.integrations.quackback.status_stage`). Per theme: the share of items in each stage, the
median time from an item's ask to its first status change, and the days from the theme's first ask to its
first response; the highest-demand themes nobody has responded to; and one chart of asked vs delivered.

Example:
    >>> import pandas as pd
    >>> items = pd.DataFrame({"theme": [0, 0, 1], "theme_label": ["export", "export", "sso"],
    ...     "created_at": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-02"], utc=True),
    ...     "status": ["Complete", "Open", "Open"],
    ...     "status_changed_at": pd.to_datetime(["2026-01-11", None, None], utc=True)})
    >>> t = status_by_theme(items)
    >>> t[["theme", "items", "open", "shipped", "median_days_to_status_change"]].to_dict("records")[0]
    {'theme': 0, 'items': 2, 'open': 0.5, 'shipped': 0.5, 'median_days_to_status_change': 10.0}
    >>> unanswered_themes(t, pd.Series({0: 5.0, 1: 9.0}))["theme"].tolist()
    [1]
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .integrations.quackback._status import STAGES, status_stage
from .records import to_utc_times
from .themes._model import bounded_period_range

__all__ = ["STATUS_SECTION", "StatusSection", "asked_vs_delivered", "delivery_times", "has_status", "status_by_theme",
           "status_section", "unanswered_themes"]

STATUS_SECTION = "team-response"
_DAY = pd.Timedelta(days=1)


@dataclass
class StatusSection:
    """The section's HTML, its tables and the chart (a PNG data URI)."""

    html: str
    by_theme: pd.DataFrame
    unanswered: pd.DataFrame
    asked_vs_delivered: pd.DataFrame
    chart: str


def has_status(items: pd.DataFrame) -> bool:
    """True when the items carry at least one status value."""
    return bool("status" in items and items["status"].map(status_stage).notna().any())


def _stages(items: pd.DataFrame) -> pd.Series:
    if "status_stage" in items and items["status_stage"].isin(STAGES).any():
        given = items["status_stage"].where(items["status_stage"].isin(STAGES))
        return given.fillna(items["status"].map(status_stage))
    return items["status"].map(status_stage)


def _times(items: pd.DataFrame, col: str) -> pd.Series:
    # in seconds, whatever unit the column was read in: a date past 2262 (a placeholder such as 2999-12-31)
    # is held in a coarser unit than nanoseconds, and subtracting a nanosecond column from it overflowed
    # (pandas' bare OutOfBoundsDatetime stopped the report)
    if col not in items:
        return pd.Series(pd.NaT, index=items.index, dtype="datetime64[s, UTC]")
    return to_utc_times(items[col])[0].dt.as_unit("s")


def status_by_theme(items: pd.DataFrame, *, theme_col: str = "theme", label_col: str = "theme_label") -> pd.DataFrame:
    """Per theme: ``items``, the share in each stage, ``responded`` (share no longer open or with a status
    change), ``median_days_to_status_change`` and ``days_first_ask_to_first_response``."""
    df = pd.DataFrame({"theme": items[theme_col].to_numpy(),
                       "label": items[label_col].to_numpy() if label_col in items else items[theme_col].astype(str).to_numpy(),
                       "stage": _stages(items).to_numpy(),
                       # Series, not arrays: to_numpy() drops the time zone of an all-missing column
                       "asked": _times(items, "created_at").reset_index(drop=True),
                       "changed": _times(items, "status_changed_at").reset_index(drop=True)})
    df = df[df["stage"].notna()]
    # an item asked after its status was set (a request joining a post already planned) was answered as it was
    # asked: 0 days, not the -31 "days to status change" the report showed
    df["wait"] = ((df["changed"] - df["asked"]) / _DAY).clip(lower=0)
    rows = []
    for (theme, label), g in df.groupby(["theme", "label"], sort=False):
        shares = g["stage"].value_counts(normalize=True)
        responded = (g["stage"] != "open") | g["changed"].notna()
        first_change = g["changed"].min()
        rows.append({"theme": theme, "label": label, "items": len(g),
                     **{s: round(float(shares.get(s, 0.0)), 4) for s in STAGES},
                     "responded": round(float(responded.mean()), 4),
                     "median_days_to_status_change": round(float(g["wait"].median()), 2) if g["wait"].notna().any() else None,
                     "days_first_ask_to_first_response":
                         round(max(0.0, float((first_change - g["asked"].min()) / _DAY)), 2)
                         if pd.notna(first_change) and pd.notna(g["asked"].min()) else None})
    cols = ["theme", "label", "items", *STAGES, "responded", "median_days_to_status_change",
            "days_first_ask_to_first_response"]
    return pd.DataFrame(rows, columns=cols).sort_values("items", ascending=False, kind="stable").reset_index(drop=True)


def unanswered_themes(by_theme: pd.DataFrame, demand: pd.Series, *, top: int = 10) -> pd.DataFrame:
    """Themes with no response at all (every item open, no status change), highest ``demand`` first.

    ``demand`` maps theme ids to a demand score (the report passes its priority score). Outliers (-1) are left out.
    """
    quiet = by_theme[(by_theme["responded"] == 0) & (by_theme["theme"] != -1)].copy()
    quiet["demand"] = quiet["theme"].map(demand).astype(float)
    return quiet.sort_values(["demand", "items"], ascending=False, kind="stable").head(top)[["theme", "label", "items", "demand"]]


def delivery_times(items: pd.DataFrame) -> tuple[pd.Series, int]:
    """When each shipped item was delivered: its status change, or else its last update (a pull from Quackback
    has no status history; a shipped post's last update is usually the change to shipped). Returns the times
    and how many came from the last update."""
    shipped = _stages(items) == "shipped"
    changed = _times(items, "status_changed_at").where(shipped)
    fallback = _times(items, "updated_at").where(shipped & changed.isna())
    return changed.fillna(fallback), int(fallback.notna().sum())


def _undated_shipped(items: pd.DataFrame) -> int:
    """How many shipped items :func:`delivery_times` has no time for."""
    times, _ = delivery_times(items)
    return int(((_stages(items) == "shipped") & times.isna()).sum())


def asked_vs_delivered(items: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """Per period: items asked (created), items delivered (shipped, see :func:`delivery_times`), both cumulated."""
    asked = _times(items, "created_at")
    delivered, _ = delivery_times(items)
    frames = {}
    for name, t in (("asked", asked), ("delivered", delivered)):
        t = t.dropna()
        # no time at all (nothing shipped yet): an empty count over periods; an empty *integer* index beside the
        # asked periods printed pandas' "Passing integer data to PeriodArray is deprecated" on every such report
        frames[name] = (t.dt.tz_localize(None).dt.to_period(freq).value_counts() if len(t) else
                        pd.Series(dtype=int, index=pd.PeriodIndex([], freq=freq)))
    out = pd.DataFrame(frames).fillna(0).astype(int).sort_index()
    if len(out):
        full = bounded_period_range(out.index.min(), out.index.max(), freq)
        out = out.reindex(full, fill_value=0)
    out["asked_total"] = out["asked"].cumsum()
    out["delivered_total"] = out["delivered"].cumsum()
    out.index = out.index.to_timestamp() if len(out) else out.index
    return out.rename_axis("period").reset_index()


def status_section(items: pd.DataFrame, demand: pd.Series, *, freq: str = "W",
                   png: Callable[[Any], str], table: Callable[[pd.DataFrame, int], str]) -> StatusSection:
    """Build the section (``png`` turns a matplotlib figure into a data URI; ``table`` renders a frame)."""
    import matplotlib.pyplot as plt

    by_theme = status_by_theme(items)
    quiet = unanswered_themes(by_theme, demand)
    flow = asked_vs_delivered(items, freq)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    if len(flow):
        ax.plot(flow["period"], flow["asked_total"], lw=2, color="#1c7ed6", label="asked (cumulative)")
        ax.plot(flow["period"], flow["delivered_total"], lw=2, color="#2b8a3e", label="delivered (cumulative)")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_ylabel("items")
    ax.set_title("Asked vs delivered over time")
    fig.autofmt_xdate()
    chart = png(fig)
    stages = _stages(items).value_counts(normalize=True)
    waits = by_theme["median_days_to_status_change"].dropna()
    head = (f"<p>{int(_stages(items).notna().sum())} items with a status: "
            + ", ".join(f"{stages.get(s, 0):.0%} {s.replace('_', ' ')}" for s in STAGES)
            + (f". Median over themes of the median days from ask to first status change: {waits.median():.1f}."
               if len(waits) else ". No status changes with a date yet.")
            + (f" For {approx} shipped items without a recorded status change, the chart counts their last update "
               "as the delivery." if (approx := delivery_times(items)[1]) else "")
            # a backlog whose items say "Complete" but carry no dates drew "delivered: 0" beside "33% shipped"
            + (f" {undated} shipped items have no date of delivery (no status_changed_at or updated_at) and are not "
               "in the chart's delivered line." if (undated := _undated_shipped(items)) else "") + "</p>")
    shown = by_theme.assign(**{s: by_theme[s].map("{:.0%}".format) for s in (*STAGES, "responded")})
    body = (head + f'<img alt="asked vs delivered chart" src="{chart}">'
            + "<h3>Status by theme</h3>" + table(shown, 20)
            + "<h3>Highest-demand themes with no response</h3>"
            + (table(quiet.round(2), 10) if len(quiet) else "<p>Every theme has had a response.</p>"))
    section = f'<section id="{STATUS_SECTION}"><h2>{html.escape("How the team is responding")}</h2>{body}</section>'
    return StatusSection(section, by_theme, quiet, flow, chart)
