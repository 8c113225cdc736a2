"""Prioritisation helpers other apps call: RICE, ICE, MoSCoW and demand scores of themes or tags.

All functions are vectorised: they accept scalars, sequences, numpy arrays or pandas Series (scalars
broadcast), and return the same shape — a float for scalars, an array for arrays/sequences, a Series
(with the input's index) when any input is a Series. Bad input raises
:class:`~feedback_nlp.errors.InvalidInputError` naming the argument and the offending positions; nothing is
coerced silently.

Formulas
--------
- **RICE** = reach × impact × confidence / effort.
  reach: people or accounts per period (≥ 0); impact on Intercom's scale 0.25 (minimal), 0.5 (low),
  1 (medium), 2 (high), 3 (massive); confidence a **fraction** in [0, 1] (or a percentage in [0, 100] with
  ``confidence_scale="percent"``); effort in person-months (> 0).
- **ICE** = impact × confidence × ease, each on 1–10 (so 1–1000); ``method="mean"`` gives their mean (1–10).
- **MoSCoW**: see :func:`moscow`.
- **Demand**: see :func:`theme_scores`.

Example:
    >>> rice(reach=400, impact=2, confidence=0.8, effort=4)
    160.0
    >>> ice([8, 5], 7, 6).tolist()
    [336.0, 210.0]
"""

from __future__ import annotations

import datetime
import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from decimal import Decimal
from typing import Any, Union

import numpy as np
import pandas as pd

from .cleaning import _has_surrogate
from .errors import ColumnError, InvalidInputError, quoted, quoted_cell, quoted_list
from .records import _id_key, parse_timestamp, to_utc_times

__all__ = [
    "DEFAULT_DEMAND_WEIGHTS",
    "MOSCOW_CATEGORIES",
    "RICE_IMPACT_SCALE",
    "demand_scores",
    "ice",
    "moscow",
    "non_ask_themes",
    "rice",
    "theme_scores",
]

ArrayLike = Union[float, int, Sequence[float], np.ndarray, pd.Series]
RICE_IMPACT_SCALE = (0.25, 0.5, 1.0, 2.0, 3.0)
MOSCOW_CATEGORIES = ("must", "should", "could", "won't")
#: Weights of the normalised components in :func:`theme_scores`' ``priority`` (they need not sum to 1).
DEFAULT_DEMAND_WEIGHTS: dict[str, float] = {"volume": 0.2, "unique_accounts": 0.3, "revenue": 0.35, "growth": 0.15}


def _positions(mask: np.ndarray, limit: int = 10) -> str:
    idx = np.flatnonzero(mask)
    out = ", ".join(map(str, idx[:limit]))
    return out + (f" … ({len(idx)} in all)" if len(idx) > limit else "")


def _floatable(value: Any) -> bool:
    try:
        x = float(value)
    except (OverflowError, ValueError):
        return False
    # Decimal("1e400") is a finite number that float() makes inf (an int of that size raises OverflowError)
    return math.isfinite(x) or not (isinstance(value, Decimal) and value.is_finite())


def _no_value(value: Any) -> bool:
    """None, pd.NA or pd.NaT: a missing value (was "non-numeric values", as if the cell held text)."""
    return value is None or value is pd.NA or value is pd.NaT


class _Args:
    """Validates and broadcasts the numeric arguments of one call; remembers how to shape the result."""

    def __init__(self, **kwargs: Any) -> None:
        self.index: pd.Index | None = None
        self.scalar = True
        arrays: dict[str, np.ndarray] = {}
        for name, value in kwargs.items():
            arrays[name] = self._to_array(name, value)
        lengths = {n: len(a) for n, a in arrays.items() if a.ndim == 1}
        if len(set(lengths.values())) > 1:
            raise InvalidInputError("arguments have mismatched lengths: "
                                    + ", ".join(f"{n}={k}" for n, k in lengths.items()))
        n = next(iter(lengths.values()), None)
        self.values = {k: (np.full(n, a) if n is not None and a.ndim == 0 else a) for k, a in arrays.items()}

    def _to_array(self, name: str, value: Any) -> np.ndarray:
        if isinstance(value, pd.DataFrame):
            raise InvalidInputError(f"{name} must be a column (Series), not a DataFrame")
        if isinstance(value, pd.Series):
            if self.index is not None and len(self.index) == len(value) and not self.index.equals(value.index):
                raise InvalidInputError(f"{name} has a different index than the other Series arguments")
            self.index = value.index if self.index is None else self.index
            value = value.to_numpy()
        if isinstance(value, (bool, np.bool_, str, bytes, bytearray, memoryview)):  # a memoryview: its bytes as numbers
            raise InvalidInputError(f"{name} must be numeric, got {type(value).__name__}")
        if isinstance(value, (set, frozenset, Mapping)):  # "non-numeric values" for a set of numbers
            raise InvalidInputError(f"{name} is a {type(value).__name__}: pass its numbers as a list, an array or a "
                                    "Series, in the order of the other arguments")
        if isinstance(value, (Iterator, KeysView, ValuesView)):  # a generator of numbers was one object: "must be numeric"
            value = list(value)
        if isinstance(value, np.ma.MaskedArray):  # np.asarray dropped the mask: a masked (missing) value was scored
            data = np.ma.getdata(value).astype(object)
            data[np.ma.getmaskarray(value)] = np.nan
            value = data
        arr = np.asarray(value, dtype=object if not isinstance(value, np.ndarray) else None)
        if arr.ndim > 1:
            raise InvalidInputError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
        if arr.ndim == 1:
            self.scalar = False
        if arr.dtype == object or arr.dtype.kind in "bUSMmc":  # complex: astype(float) dropped the imaginary part
            flat = arr.reshape(-1)
            missing = np.array([_no_value(v) for v in flat], dtype=bool)
            if missing.any():
                where = "" if arr.ndim == 0 else f" at positions {_positions(missing)}"
                raise InvalidInputError(f"{name} has missing values (None, pd.NA){where}; every item needs a number")
            # Decimal (SQL NUMERIC columns through pandas.read_sql) and Fraction are numbers too; complex is not,
            # nor a duration (an effort of "2 weeks" was scored as 1.2e15 nanoseconds)
            bad = np.array([isinstance(v, (bool, np.bool_, str, bytes, complex, np.complexfloating, np.timedelta64,
                                           datetime.timedelta))
                            or not isinstance(v, (numbers.Number, np.number)) for v in flat], dtype=bool)
            if bad.any():
                where = "" if arr.ndim == 0 else f" at positions {_positions(bad)}"
                raise InvalidInputError(f"{name} must be numeric; non-numeric values{where}")
            beyond = np.array([not _floatable(v) for v in flat], dtype=bool)
            if beyond.any():  # 10**400 (a Python int) or Decimal("sNaN"): astype(float) raised OverflowError
                where = "" if arr.ndim == 0 else f" at positions {_positions(beyond)}"
                raise InvalidInputError(f"{name} has numbers a float cannot hold{where}")
            arr = arr.astype(float)
        arr = arr.astype(float)
        nan = np.isnan(arr.reshape(-1)) | np.isinf(arr.reshape(-1))
        if nan.any():
            where = "" if arr.ndim == 0 else f" at positions {_positions(nan)}"
            raise InvalidInputError(f"{name} has NaN or infinite values{where} (a missing value is NaN)")
        return arr

    def check(self, name: str, bad: np.ndarray, what: str) -> None:
        bad = np.atleast_1d(bad)
        if bad.any():
            where = "" if self.scalar else f" at positions {_positions(bad)}"
            raise InvalidInputError(f"{name} {what}{where}")

    def shape(self, result: np.ndarray) -> Any:
        if self.scalar:
            return float(result)
        if self.index is not None:
            return pd.Series(result, index=self.index)
        return result


def rice(reach: ArrayLike, impact: ArrayLike, confidence: ArrayLike, effort: ArrayLike, *,
         confidence_scale: str = "fraction") -> Any:
    """RICE score = reach × impact × confidence / effort.

    Args:
        reach: people or accounts reached per period, ≥ 0 (e.g. ``theme_scores(...)["unique_accounts"]``).
        impact: one of 0.25, 0.5, 1, 2, 3.
        confidence: a fraction in [0, 1] (default) or, with ``confidence_scale="percent"``, a percentage in
            [0, 100]. A value above 1 with the fraction scale, or in (0, 1) with the percent scale, is
            ambiguous and rejected rather than guessed.
        effort: person-months, > 0.

    >>> rice([100, 200], 1, 0.5, [1, 2]).tolist()
    [50.0, 50.0]
    >>> rice(100, 1, 80, 2, confidence_scale="percent")
    40.0
    """
    a = _Args(reach=reach, impact=impact, confidence=confidence, effort=effort)
    v = a.values
    a.check("reach", v["reach"] < 0, "must be >= 0")
    a.check("impact", ~np.isin(v["impact"], RICE_IMPACT_SCALE), f"must be one of {RICE_IMPACT_SCALE}")
    a.check("effort", v["effort"] <= 0, "must be > 0 (person-months)")
    conf = v["confidence"]
    if confidence_scale == "fraction":
        a.check("confidence", conf < 0, "must be >= 0")
        a.check("confidence", conf > 1, "is above 1: give a fraction in [0, 1], or pass confidence_scale='percent'")
    elif confidence_scale == "percent":
        a.check("confidence", (conf < 0) | (conf > 100), "must be in [0, 100] percent")
        a.check("confidence", (conf > 0) & (conf < 1),
                "is between 0 and 1 although confidence_scale='percent': ambiguous, give percentages")
        conf = conf / 100.0
    else:
        raise InvalidInputError(f"confidence_scale must be 'fraction' or 'percent', got {confidence_scale!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        score = v["reach"] * v["impact"] * conf / v["effort"]
        # a reach near 1e308 overflowed in reach × impact before the effort brought it back into range (a score of
        # 3e307 was refused), and times a confidence of 0 it was NaN, sent by the service as null
        score = np.where(np.isfinite(score), score, v["reach"] / v["effort"] * (v["impact"] * conf))
    score = np.where((v["reach"] == 0) | (conf == 0), 0.0, score)  # 0 × anything is 0, not NaN
    # 1e308 people, or an effort of 1e-320 months, gave a score of inf, written to the output as it was
    a.check("reach", ~np.isfinite(score), "gives an infinite score (reach / effort beyond a float's range)")
    return a.shape(score)


def ice(impact: ArrayLike, confidence: ArrayLike, ease: ArrayLike, *, method: str = "product") -> Any:
    """ICE score from impact, confidence and ease, each on a 1–10 scale.

    ``method="product"`` (default) returns I × C × E (1–1000); ``method="mean"`` returns their mean (1–10).

    >>> ice(10, 10, 10), ice(4, 6, 8, method="mean")
    (1000.0, 6.0)
    """
    a = _Args(impact=impact, confidence=confidence, ease=ease)
    for name in ("impact", "confidence", "ease"):
        a.check(name, (a.values[name] < 1) | (a.values[name] > 10), "must be on the 1-10 scale")
    i, c, e = a.values["impact"], a.values["confidence"], a.values["ease"]
    if method == "product":
        return a.shape(i * c * e)
    if method == "mean":
        return a.shape((i + c + e) / 3.0)
    raise InvalidInputError(f"method must be 'product' or 'mean', got {method!r}")


def _is_flag(x: Any) -> bool:
    """True/False, or the numbers 0 and 1; a missing value (None, NaN, pd.NA) is none: ``pd.NA in (0, 1)`` was
    "boolean value of NA is ambiguous" for a nullable boolean column."""
    if isinstance(x, (bool, np.bool_)):
        return True
    return isinstance(x, (numbers.Number, np.number)) and bool(x == 0 or x == 1)  # NaN equals neither


def _flags(name: str, value: Any, n: int, index: pd.Index | None) -> np.ndarray:
    if value is None:
        return np.zeros(n, dtype=bool)  # n or 1: no scores got one flag, and the empty input an IndexError
    if isinstance(value, pd.Series):
        # a flag column of another frame (or re-sorted) was applied by position to the wrong scores
        if index is not None and len(value) == n and not value.index.equals(index):
            raise InvalidInputError(f"{name} has a different index than scores (align it with .reindex, "
                                    "or pass its values)")
        value = value.to_numpy(dtype=object)
    if isinstance(value, (set, frozenset, Mapping)):  # no order to match the scores by
        raise InvalidInputError(f"{name} is a {type(value).__name__}: pass one flag per score as a list, an array "
                                "or a Series, in the order of the scores")
    if isinstance(value, (Iterator, KeysView, ValuesView)):  # a generator was one object: "must be booleans"
        value = list(value)
    arr = np.atleast_1d(np.asarray(value, dtype=object))
    if arr.ndim != 1:  # was "has 4 values, scores have 4" for a (4, 1) column
        raise InvalidInputError(f"{name} must be one flag or one per score (1-D), got shape {arr.shape}")
    bad = np.array([not _is_flag(x) for x in arr.reshape(-1)], dtype=bool)
    if bad.any():
        raise InvalidInputError(f"{name} must be booleans; other values at positions {_positions(bad)}")
    if arr.ndim != 1 or len(arr) not in (1, n):
        raise InvalidInputError(f"{name} has {len(arr)} values, scores have {n}")
    return np.broadcast_to(arr.astype(bool), (n,))


def moscow(
    scores: ArrayLike,
    *,
    cutoffs: Mapping[str, float] | None = None,
    quantiles: tuple[float, float, float] = (0.8, 0.5, 0.2),
    commitment: Any = None,
    deadline: Any = None,
    overrides: Mapping[Any, Any] | None = None,
    explain: bool = False,
) -> Any:
    """Map priority scores (and explicit flags) to MoSCoW categories: must / should / could / won't.

    The rule, applied in this order:

    1. a manual override (``overrides={key: category}`` or ``{key: (category, reason)}``, keys are Series
       index labels, or positions where the index holds no integers) wins;
    2. ``commitment`` (contractual, legal or regulatory commitment) → must;
    3. score ≥ ``cutoffs["must"]`` → must, ≥ ``cutoffs["should"]`` → should, ≥ ``cutoffs["could"]`` → could,
       else won't;
    4. ``deadline`` (a committed date inside the planning horizon) lifts could/won't to should.

    Without ``cutoffs``, each score's category follows its **mid-rank percentile** among the scores,
    ``p = (scores below it + half the scores equal to it) / n``: must when ``p >= quantiles[0]`` (default
    0.8), should when ``p >= 0.5``, could when ``p >= 0.2``, else won't. Without ties that is about 20% must,
    30% should, 30% could and 20% won't. Ties share their average position, so equal scores always get the
    same category, the split does not depend on the input order, and all-equal scores are all "should"
    (their mid-rank percentile is 0.5), never all "must".

    Returns categories in the input's shape; with ``explain=True`` a DataFrame with ``moscow``, ``rule``
    and ``overridden`` columns (the record of every manual override and why).

    >>> moscow([9, 5, 1], cutoffs={"must": 8, "should": 4, "could": 2}).tolist()
    ['must', 'should', "won't"]
    >>> moscow([3, 3, 3, 3]).tolist(), moscow([1, 2, 3, 4, 5]).tolist()
    (['should', 'should', 'should', 'should'], ["won't", 'could', 'should', 'should', 'must'])
    """
    a = _Args(scores=scores)
    s = np.atleast_1d(a.values["scores"])
    n = len(s)
    if cutoffs is None:
        if a.scalar or n < 2:
            raise InvalidInputError(f"moscow splits by rank, which needs at least 2 scores (got {'a scalar' if a.scalar else n}); "
                                    "pass explicit cutoffs={'must':..,'should':..,'could':..}")
        q = list(quantiles) if isinstance(quantiles, (Sequence, np.ndarray)) and not isinstance(quantiles, str) else []
        # "abc" or None was a TypeError from the comparison below
        if (len(q) != 3 or not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in q)
                or not all(0 <= x <= 1 for x in q) or not q[0] >= q[1] >= q[2]):
            raise InvalidInputError(f"quantiles must be 3 decreasing fractions, got {quantiles}")
        cat, rule = _moscow_by_rank(s, q)
    else:
        missing = {"must", "should", "could"} - set(cutoffs)
        if missing:
            raise InvalidInputError(f"cutoffs is missing {sorted(missing)}")
        unknown = [k for k in cutoffs if k not in ("must", "should", "could")]
        if unknown:  # {"wont": 0} or {"Must": 9} beside the three was ignored without a word
            raise InvalidInputError(f"cutoffs has unknown key(s) {quoted_list(map(str, unknown), 5)}: give must, "
                                    "should and could (below could is won't)")
        given = {k: cutoffs[k] for k in ("must", "should", "could")}
        if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, Decimal)) for v in given.values()):
            raise InvalidInputError(f"cutoffs must be numbers, got {given}")  # float('x') was a bare ValueError
        cut = {k: float(v) if _floatable(v) else math.inf for k, v in given.items()}  # 10**400: OverflowError
        if not all(np.isfinite(v) for v in cut.values()):
            raise InvalidInputError(f"cutoffs must be finite numbers, got {cut}")
        if not cut["must"] >= cut["should"] >= cut["could"]:
            raise InvalidInputError(f"cutoffs must satisfy must >= should >= could, got {cut}")
        cat = np.where(s >= cut["must"], "must", np.where(s >= cut["should"], "should",
                                                          np.where(s >= cut["could"], "could", "won't"))).astype(object)
        rule = np.array([f"score {_shown(x)} >= {c} cutoff {_shown(cut[c])}" if c != "won't" else
                         f"score {_shown(x)} < could cutoff {_shown(cut['could'])}" for x, c in zip(s, cat)], dtype=object)
    com = _flags("commitment", commitment, n, a.index)
    dl = _flags("deadline", deadline, n, a.index)
    lift = dl & np.isin(cat, ["could", "won't"])
    cat[lift], rule[lift] = "should", "deadline"
    cat[com], rule[com] = "must", "commitment"
    overridden = np.zeros(n, dtype=bool)
    if overrides is not None and not isinstance(overrides, Mapping):  # a list of pairs was a bare AttributeError
        raise InvalidInputError(f"overrides must be a mapping such as {{'sso': ('must', 'contract')}}, got "
                                f"{type(overrides).__name__}")
    for key, value in (overrides or {}).items():
        if isinstance(value, tuple) and len(value) != 2:  # was "too many values to unpack"
            raise InvalidInputError(f"override for {quoted(key)} must be a category or a (category, reason) pair, "
                                    f"got {quoted(value)}")
        category, reason = value if isinstance(value, tuple) else (value, "manual override")
        # isinstance first: an array was "truth value ... is ambiguous" from `in`, pd.NA "boolean value of NA"
        if not isinstance(category, str) or category not in MOSCOW_CATEGORIES:
            raise InvalidInputError(f"override for {quoted(key)} is {quoted(category)}; expected one of "
                                    f"{MOSCOW_CATEGORIES}{_category_hint(category)}")
        # a position only where no label could be meant: with an integer index, {0: ...} for a label 0 that was
        # filtered out overrode the item at position 0, another item, without a word
        labels_are_ints = a.index is not None and a.index.inferred_type == "integer"
        if a.index is not None and key in a.index:
            pos = a.index.get_loc(key)
        elif (isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)) and 0 <= key < n  # True: 1
              and not labels_are_ints):
            pos = int(key)
        else:
            raise InvalidInputError(f"override key {quoted(key)} matches no score")
        cat[pos], rule[pos], overridden[pos] = category, f"override: {reason}", True
    if explain:
        return pd.DataFrame({"score": s, "moscow": cat, "rule": rule, "overridden": overridden},
                            index=a.index if a.index is not None else None)
    if a.scalar:
        return str(cat[0])
    if a.index is not None:
        return pd.Series(pd.Categorical(cat, categories=list(MOSCOW_CATEGORIES), ordered=True), index=a.index)
    return cat.astype(str)


def _shown(x: float) -> str:
    """A number as short as it reads back exactly: ``{:g}`` showed 7.9999999 as 8, "score 8 >= should cutoff 4"
    beside a must cutoff of 8."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def _category_hint(category: Any) -> str:
    """A hint for a MoSCoW label in another case or with a typographic apostrophe (a spreadsheet's "Won’t")."""
    if isinstance(category, str):
        plain = category.strip().lower().replace("\u2019", "'").replace("\u2018", "'")
        plain = {"wont": "won't", "won t": "won't"}.get(plain, plain)
        if plain in MOSCOW_CATEGORIES:
            return f" (write {plain!r}: the categories are lower case, with a straight apostrophe)"
    return ""


def _moscow_by_rank(s: np.ndarray, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Categories from mid-rank percentiles (ties share their average position; see :func:`moscow`)."""
    order = np.sort(s)
    below = np.searchsorted(order, s, side="left")
    equal = np.searchsorted(order, s, side="right") - below
    p = (below + equal / 2) / len(s)
    cat = np.where(p >= q[0], "must", np.where(p >= q[1], "should", np.where(p >= q[2], "could", "won't"))).astype(object)
    bound = {"must": q[0], "should": q[1], "could": q[2]}
    rule = np.array([f"score {x:g}: rank percentile {pi:.0%} >= {bound[c]:.0%}" if c != "won't" else
                     f"score {x:g}: rank percentile {pi:.0%} < {q[2]:.0%}" for x, pi, c in zip(s, p, cat)], dtype=object)
    return cat, rule


def _mask(values: pd.Series, test: Callable[[Any], bool]) -> pd.Series:
    """``test`` of each value as a boolean Series: ``map`` of an empty text column keeps the text dtype, and
    combining that with ``&`` is a pandas deprecation warning (an error in pandas 4) for a frame of no rows."""
    return values.map(test).astype(bool)


def _time_problem(value: Any) -> str:
    """Why ``value`` is no time, as parse_timestamp says, or '' when it says nothing."""
    try:
        parse_timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        shown = quoted_cell(value)
        return f" ({exc})" if shown in str(exc) else f" (e.g. {shown}: {exc})" if str(exc) else f" (e.g. {shown})"
    return f" (e.g. {quoted_cell(value)})"


def _theme_text(value: Any) -> Any:
    """A theme cell with its text themes as tags are compared: without the spaces around them, in Unicode's composed
    form; other values (numbers, lists of them) as given.

    >>> _theme_text(" sso "), _theme_text(["cafe\u0301 ", 3]), _theme_text(7)
    ('sso', ['café', 3], 7)
    """
    if isinstance(value, str):
        text = value.strip()
        return text if text.isascii() else unicodedata.normalize("NFC", text)
    if isinstance(value, (list, tuple, np.ndarray)) and any(isinstance(v, str) for v in value):
        return [_theme_text(v) if isinstance(v, str) else v for v in value]
    return value


def _distinct_values(value: Any) -> Any:
    """A list cell without its repeated values, in order; other cells (and lists of unhashable values) as given.

    >>> _distinct_values(["sso", "export", "sso"])
    ['sso', 'export']
    """
    if not isinstance(value, (list, tuple, np.ndarray)) or not all(isinstance(v, Hashable) for v in value):
        return value
    distinct = list(dict.fromkeys(value))
    return distinct if len(distinct) < len(value) else value


def _plain_amount(value: Any) -> Any:
    """A revenue cell pandas can read: a NaN Decimal (quiet or signalling) as NaN, a number beyond a float's range
    as inf (refused as such), other numbers as floats, anything else as it is."""
    if isinstance(value, Decimal):
        return math.nan if value.is_nan() else float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value) if _floatable(value) else math.inf
    return value


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a text that reads as one (``"-1.0"``), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (numbers.Real, str)):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _theme_order(theme: Any) -> tuple[int, float, str]:
    """A sort key over themes of any type: numbers by value first, then everything else by its text."""
    number = _number(theme) if isinstance(theme, numbers.Real) else None
    return (0, number, "") if number is not None and not np.isnan(number) else (1, 0.0, str(theme))


def theme_scores(
    df: pd.DataFrame,
    *,
    theme_col: str = "theme",
    account_col: str | None = "account_id",
    revenue_col: str | None = "account_revenue",
    time_col: str | None = "created_at",
    weights: Mapping[str, float] | None = None,
    now: Any = None,
    window: str | pd.Timedelta = "28D",
    exclude: Sequence[Any] = (-1, "-1", "outlier", None),
) -> pd.DataFrame:
    """Demand score of each theme (or tag, or any grouping column) from the feedback that mentions it.

    One row per theme, sorted by ``priority`` (ties by ``volume``, then by theme, whatever the rows' order):

    - ``volume``: feedback items; ``unique_accounts``: distinct requesting accounts;
    - ``revenue``: summed revenue of the unique requesting accounts — each account counted **once per
      theme**, with its largest revenue figure on any row (of any theme) if it varies between rows or is
      given on some rows only; ``accounts_without_revenue`` counts accounts whose revenue is missing on
      every row (they add nothing to ``revenue``);
    - ``recent`` / ``previous``: items in the last ``window`` before ``now`` (default: the newest item's time)
      and in the window before it;
      ``growth`` = (recent − previous) / max(previous, 1);
    - ``priority`` (0–100) = 100 × Σ wᵢ·cᵢ / Σ wᵢ over the components volume, unique_accounts and revenue
      (each divided by its maximum over themes) and growth (clipped to [0, 2], divided by 2).
      Weights default to :data:`DEFAULT_DEMAND_WEIGHTS`.

    A column holding lists (multi-label tags) counts the row once for each of its values. Rows whose
    theme is in ``exclude`` (outliers; ``None`` there stands for a missing theme, empty cells included) are
    left out; how many input rows that left uncounted is in ``result.attrs["rows_without_theme"]``. A revenue on a
    row without an account adds nothing (it cannot be counted once per account); how many such rows there were
    is in ``result.attrs["revenue_rows_without_account"]``.

    >>> df = pd.DataFrame({"theme": ["sso", "sso", "export"], "account_id": ["a", "a", "b"],
    ...                    "account_revenue": [100.0, 100.0, 50.0]})
    >>> theme_scores(df, time_col=None)[["theme", "volume", "unique_accounts", "revenue"]].values.tolist()
    [['sso', 2, 1, 100.0], ['export', 1, 1, 50.0]]
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"theme_scores expects a DataFrame, got {type(df).__name__}")
    _check_columns(df, {"theme": theme_col, "account": account_col, "revenue": revenue_col, "time": time_col})
    for col, role in ((theme_col, "theme"), (account_col, "account"), (revenue_col, "revenue"), (time_col, "time")):
        if col is not None and col not in df.columns:
            raise ColumnError(f"{role} column {quoted(col)} not found; available columns: {quoted_list(df.columns)} "
                              f"(pass {role}_col=None to score without it)" if role != "theme" else
                              f"theme column {quoted(col)} not found; available columns: {quoted_list(df.columns)}")
    win, ref_now = _window(window), _now(now)  # checked even when there is no time column to use them on
    if weights is not None and not isinstance(weights, Mapping):  # a list was "cannot convert dictionary update"
        raise InvalidInputError(f"weights must be a mapping such as {{'volume': 0.2, 'revenue': 0.5}}, got "
                                f"{type(weights).__name__}")
    if isinstance(exclude, (str, bytes, Mapping)) or not isinstance(exclude, Iterable):  # None, "a": TypeErrors
        raise InvalidInputError(f"exclude must be a list of theme values such as [-1, 'outlier', None] (an empty "
                                f"list to exclude nothing), got {quoted(exclude)}")
    exclude = list(exclude)
    w = dict(DEFAULT_DEMAND_WEIGHTS if weights is None else weights)
    unknown = set(w) - set(DEFAULT_DEMAND_WEIGHTS)
    if unknown:
        raise InvalidInputError(f"unknown weight(s) {quoted_list(sorted(map(str, unknown)), 5)}; allowed: {sorted(DEFAULT_DEMAND_WEIGHTS)}")
    # numbers.Real: a weight read from a numpy array (np.float32(0.5)) was refused as "not a finite number >= 0";
    # Decimal as in rice and moscow; a Fraction or an int of 10**400 was numpy's TypeError from isfinite
    bad_w = [k for k, x in w.items() if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, Decimal))
             or not _floatable(x) or not math.isfinite(float(x)) or x < 0]
    if bad_w:
        raise InvalidInputError(f"weight {bad_w[0]!r} must be a finite number >= 0, got {w[bad_w[0]]!r}")
    w = {k: float(x) for k, x in w.items()}
    if sum(w.values()) <= 0:
        raise InvalidInputError(f"weights must have a positive sum, got {w}")

    data = df.copy()
    if isinstance(data[theme_col].dtype, pd.CategoricalDtype):  # of numbers, -1 included: the outlier filter
        data[theme_col] = data[theme_col].astype(object)         # failed with "bad operand type for unary ~"
    # each input row's position, carried through the explode below: what counts the rows no theme kept
    position = np.arange(len(data))
    # " sso " (a spreadsheet's stray space) or a decomposed "café" was a theme of its own beside "sso", each with part
    # of the volume, though "a | sso" split from a tag cell was stripped
    themes = data[theme_col]
    # built as objects where the cells are: map() inferred a text column, and pyarrow failed on a lone surrogate
    # (UnicodeEncodeError) before _refuse_surrogates below could name it
    data[theme_col] = (pd.Series([_theme_text(v) for v in themes], index=themes.index, dtype=object)
                       if themes.dtype == object or getattr(themes.dtype, "storage", None) == "python"
                       else themes.map(_theme_text))
    if data[theme_col].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        # a tag named twice in one cell (["sso", "sso"]) is still one item: it counted twice in volume and recent
        data[theme_col] = data[theme_col].map(_distinct_values)
        # explode makes a row of each value of a list, and one row of an empty list or a single theme
        position = np.repeat(position, [max(len(v), 1) if isinstance(v, (list, tuple, np.ndarray)) else 1
                                        for v in data[theme_col]])
        data = data.explode(theme_col)
    unhashable = _mask(data[theme_col], lambda v: not isinstance(v, Hashable))
    if unhashable.any():  # a dict or set theme was "unhashable type" from the grouping
        raise ColumnError(f"theme column {quoted(theme_col)} holds objects in rows {list(data.index[unhashable][:10])} "
                          f"(e.g. {quoted_cell(data[theme_col][unhashable].iloc[0])}); give a theme or a list of themes")
    _refuse_surrogates(data, theme_col, "theme")
    _refuse_surrogates(data, account_col, "account")
    keep = ~data[theme_col].isin([x for x in exclude if x is not None])
    numbers_out = {float(x) for x in exclude if isinstance(x, numbers.Real) and not isinstance(x, bool)}
    if numbers_out:  # "-1.0", the outlier id of a column pandas wrote as floats, was ranked as a theme
        keep &= ~_mask(data[theme_col], lambda v: _number(v) in numbers_out)
    if None in exclude:  # a missing theme: None, NaN, or an empty cell of a CSV (was ranked as a theme named '')
        keep &= data[theme_col].notna() & ~_mask(data[theme_col], _blank)
    data = data[keep]
    counted = int(np.unique(position[keep.to_numpy()]).size)
    if revenue_col is not None:
        _refuse_non_amounts(data, revenue_col)
        given = data[revenue_col].where(~data[revenue_col].map(_blank))  # an empty CSV cell is a missing amount
        if given.dtype == object:  # to_numeric failed on Decimal("sNaN") ("cannot hash") and on an int of 10**400
            given = pd.Series([_plain_amount(v) for v in given], index=given.index, dtype=object)
        rev = pd.to_numeric(given, errors="coerce")
        bad = (rev.isna() & given.notna()) | (rev < 0) | np.isinf(rev)
        if bad.any():
            raise ColumnError(f"revenue column {quoted(revenue_col)} has non-numeric, infinite or negative values in rows "
                              f"{list(data.index[bad][:10])} (e.g. {quoted_cell(data[revenue_col][bad].iloc[0])})")
        data[revenue_col] = rev
    if account_col is not None:
        bad = data[account_col].map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))
        if bad.any():  # was "unhashable type: 'list'" from the count of unique accounts
            raise ColumnError(f"account column {quoted(account_col)} holds lists or objects in rows "
                              f"{list(data.index[bad][:10])} (e.g. {quoted_cell(data[account_col][bad].iloc[0])}); "
                              "give one account id per row")
        # a blank account (an empty CSV cell read as text) is no account, as a blank theme is no theme: all the
        # blank rows were one account "", counted once with the largest of their customers' revenues
        data[account_col] = data[account_col].where(~data[account_col].map(_blank))
        # an account compared as read_feedback reads ids (1, 1.0, " 1" and "1" are one): account 1 of a CRM export
        # and "1" of a CSV were two accounts, counted twice in unique_accounts, their revenue twice too
        data[account_col] = _account_keys(data[account_col])
    unaccounted = 0
    if account_col is not None and revenue_col is not None:
        # revenue is counted once per account: a row's amount without an account cannot be, and it vanished silently
        lost = ((data[revenue_col] > 0) & data[account_col].isna()).fillna(False).to_numpy(dtype=bool)  # Int64: NA
        unaccounted = int(np.unique(position[keep.to_numpy()][lost]).size)
    groups = data.groupby(theme_col, sort=False, dropna=True)
    out = pd.DataFrame({"volume": groups.size()})
    if account_col is not None:
        out["unique_accounts"] = groups[account_col].nunique()
        if revenue_col is not None:
            # an account's revenue is its largest figure on any row, not only on the rows of this theme: an account
            # whose revenue was given on its rows of one theme was an "account without revenue" in its other themes
            pairs = data.groupby([theme_col, account_col], sort=False).size().index
            largest = data.groupby(account_col, sort=False)[revenue_col].max()
            per_account = pd.Series(largest.reindex(pairs.get_level_values(1)).to_numpy(dtype=float), index=pairs)
            with np.errstate(over="ignore"):  # an overflow is refused just below, by name
                out["revenue"] = per_account.groupby(level=0).sum(min_count=0).reindex(out.index).fillna(0.0)
            if not np.isfinite(out["revenue"]).all():  # finite amounts whose sum overflows: priority was NaN
                theme = out.index[~np.isfinite(out["revenue"])][0]
                raise InvalidInputError(f"the revenue of theme {quoted(str(theme))} sums beyond a float's range "
                                        "(amounts near 1e308): check the revenue column's unit")
            out["accounts_without_revenue"] = per_account.isna().groupby(level=0).sum().reindex(out.index).fillna(0).astype(int)
    elif revenue_col is not None:
        raise InvalidInputError("revenue needs account_col: revenue is counted once per account")
    if time_col is not None:
        ts, bad = to_utc_times(data[time_col])
        if bad.any():  # the first one's reason: 13/04/2026 read month first said nothing of FEEDBACK_NLP_DATE_ORDER
            raise ColumnError(f"time column {quoted(time_col)} has unparseable dates in rows {list(data.index[bad][:10])}"
                              f"{_time_problem(data[time_col][bad].iloc[0])}")
        ref = ts.max() if ref_now is None else ref_now
        ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref
        # compared in microseconds: two windows of ~200 years before a nanosecond column's last date reach
        # before 1677, where nanoseconds end (pandas' OutOfBoundsTimedelta)
        near = ts.dt.as_unit("us") if ts.dt.unit == "ns" else ts
        ref = ref.as_unit("us") if isinstance(ref, pd.Timestamp) and ref.unit == "ns" else ref
        recent = (near > ref - win) & (near <= ref)
        previous = (near > ref - 2 * win) & (near <= ref - win)
        out["recent"] = recent.groupby(data[theme_col]).sum().reindex(out.index).fillna(0).astype(int)
        out["previous"] = previous.groupby(data[theme_col]).sum().reindex(out.index).fillna(0).astype(int)
        out["growth"] = (out["recent"] - out["previous"]) / out["previous"].clip(lower=1)
        out["first_seen"] = ts.groupby(data[theme_col]).min().reindex(out.index)
        out["last_seen"] = ts.groupby(data[theme_col]).max().reindex(out.index)

    def norm(col: str) -> pd.Series:
        if col not in out:
            return pd.Series(0.0, index=out.index)
        if col == "growth":
            return out[col].clip(0, 2) / 2
        m = out[col].max()
        return out[col] / m if m and m > 0 else out[col] * 0.0

    used = {k: v for k, v in w.items() if k in out.columns}
    total = sum(used.values())
    if not total < 1e300:  # weights near 1e308: their sum (or 100 × it) overflowed and every priority was NaN
        top = max(used.values())
        used = {k: v / top for k, v in used.items()}
        total = sum(used.values())
    if total <= 0 and len(out):  # weights={"growth": 1} without a time column: every priority was 0, unranked
        raise InvalidInputError(f"the weights {w} give no weight to what this call can score ("
                                f"{', '.join(k for k in DEFAULT_DEMAND_WEIGHTS if k in out.columns)}): growth needs "
                                "time_col, revenue needs revenue_col and account_col, unique_accounts account_col")
    out["priority"] = 100 * sum(v * norm(k) for k, v in used.items()) / total if total > 0 else 0.0
    out = out.reset_index().rename(columns={"index": theme_col})
    # ties in priority and volume in the order of their themes: they were in the order the themes first appeared,
    # so the same items sent in another order (a query without ORDER BY) ranked tied themes differently
    keys = [_theme_order(t) for t in out[theme_col].tolist()]
    out = out.iloc[sorted(range(len(out)), key=keys.__getitem__)]
    out = out.sort_values(["priority", "volume"], ascending=False, kind="stable").reset_index(drop=True)
    # rows with no theme (blank, missing, an outlier) are left out on purpose; how many is not silent
    out.attrs["rows_without_theme"] = len(df) - counted
    out.attrs["revenue_rows_without_account"] = unaccounted
    return out


#: The columns :func:`theme_scores` adds: a theme column of one of these names cannot sit beside them.
_SCORE_COLUMNS = ("volume", "unique_accounts", "revenue", "accounts_without_revenue", "recent", "previous", "growth",
                  "first_seen", "last_seen", "priority")


def _check_columns(df: pd.DataFrame, cols: Mapping[str, Any]) -> None:
    """The column arguments name one column each of a frame with one level of column names (a list was
    "unhashable type", a column named twice "truth value of a Series is ambiguous", a theme column named
    "volume" pandas' "cannot insert volume, already exists" after all the work)."""
    if isinstance(df.columns, pd.MultiIndex):
        raise ColumnError("theme_scores needs one level of column names, this frame has a MultiIndex of columns; "
                          "flatten it first, e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns]")
    if cols["theme"] is None:  # demand_scores(df, by=None) was pandas' bare KeyError: None
        raise ColumnError("the theme column must be named (theme_col=, or by= of demand_scores); got None")
    for role, col in cols.items():
        if col is None:
            continue
        if not isinstance(col, Hashable):
            raise ColumnError(f"{role}_col must be one column name, got {quoted(col)}")
        if col in df.columns and int((df.columns == col).sum()) > 1:
            raise ColumnError(f"the {role} column {quoted(col)} is named {int((df.columns == col).sum())} times in "
                              "the frame; rename or drop the copies")
    if cols["theme"] in _SCORE_COLUMNS:
        raise ColumnError(f"the theme column is named {quoted(cols['theme'])}, like a column of the scores "
                          f"({', '.join(_SCORE_COLUMNS)}); rename that column")


def _account_keys(accounts: pd.Series) -> pd.Series:
    """The accounts as ``_id_key`` compares them, at the cost of a Python loop only where it can change something:
    a column of one number type counts the same either way, a text column needs its spaces and Unicode form seen to
    (vectorised), an object column of mixed kinds each value keyed."""
    if accounts.dtype.kind in "iufb" and not isinstance(accounts.dtype, pd.CategoricalDtype):
        return accounts
    if accounts.dtype != object and pd.api.types.is_string_dtype(accounts.dtype):
        return accounts.str.strip().str.normalize("NFC")
    # (a list, not map: map made a text column of them, which pyarrow refuses for a lone surrogate)
    return pd.Series([_id_key(v) for v in accounts], index=accounts.index, dtype=object)


def _refuse_surrogates(data: pd.DataFrame, col: Any, role: str) -> None:
    """Refuse theme or account cells holding a lone surrogate (text decoded with errors="surrogateescape"): pandas
    failed on them with pyarrow's UnicodeEncodeError while grouping, after all the checks."""
    if col is None or (data[col].dtype != object and getattr(data[col].dtype, "storage", None) != "python"):
        return  # numbers, or text in pyarrow, which cannot hold a lone surrogate
    broken = _mask(data[col], _has_surrogate)
    if broken.any():
        raise ColumnError(f"{role} column {quoted(col)} holds lone surrogates (\\udXXX: not valid Unicode text; bytes "
                          f"decoded with the wrong encoding?) in rows {list(data.index[broken][:10])}")


def _refuse_non_amounts(data: pd.DataFrame, col: Any) -> None:
    """Refuse revenue cells that are no amount of money: true/false, dates, durations and complex numbers were
    summed as 1/0 or as nanoseconds (a duration of 3 days was a revenue of 259,200,000,000,000), or failed
    with pandas' "No matching signature found"."""
    values = data[col]
    if values.dtype.kind in "bMmc":
        bad = values.notna()
    else:
        bad = values.map(lambda v: isinstance(v, (bool, np.bool_, datetime.date, datetime.timedelta, np.datetime64,
                                                  np.timedelta64, complex, np.complexfloating)))
    if bad.any():
        example = values[bad].iloc[0]
        raise ColumnError(f"revenue column {quoted(col)} holds {type(example).__name__} values, not amounts, in rows "
                          f"{list(data.index[bad][:10])} (e.g. {quoted_cell(example)}); give revenue as numbers")


#: A duration written without its unit: pandas reads the text "28" as 28 nanoseconds, as it does the number.
_UNITLESS = re.compile(r"\s*[+-]?\d+\s*")


def _window(window: Any) -> pd.Timedelta:
    """``window`` as a positive duration ("abc" was ignored without a time column; "-5D" counted nothing)."""
    # pandas reads a bare 28 as 28 nanoseconds, and every growth was 0 (np.timedelta64 is a numpy integer too)
    if isinstance(window, (numbers.Number, np.number)) and not isinstance(window, np.timedelta64):
        raise InvalidInputError(f"window must be a duration with its unit such as '28D' or pd.Timedelta(days=28), "
                                f"got the number {window!r} (pandas would read it as nanoseconds)")
    if isinstance(window, str) and _UNITLESS.fullmatch(window):  # "28" from a form, a CLI or JSON: 28 nanoseconds
        raise InvalidInputError(f"window {quoted(window)} has no unit (pandas would read it as nanoseconds); "
                                f"give one such as '{window.strip()}D'")
    try:
        win = pd.Timedelta(window)
    except (ValueError, TypeError, OverflowError) as exc:
        longest = " of at most 292 years" if "OutOfBounds" in type(exc).__name__ or "overflow" in str(exc) else ""
        raise InvalidInputError(f"window must be a duration{longest} such as 28D or 4W, got {quoted(window)}") from None
    if pd.isna(win) or win <= pd.Timedelta(0):
        raise InvalidInputError(f"window must be a positive duration such as 28D, got {quoted(window)}")
    try:  # the previous window ends two windows back: pd.Timedelta.max passed and overflowed there
        _ = 2 * win
    except (ValueError, OverflowError):
        raise InvalidInputError(f"window must be a duration of at most 146 years (two windows are compared), "
                                f"got {quoted(window)}") from None
    return win


def _now(now: Any) -> pd.Timestamp | None:
    if now is None:
        return None
    try:  # the records' rules: pandas read "13/01/2026" day first and "now" as the moment of the call
        ts = parse_timestamp(now)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InvalidInputError(f"now must be a time such as 2026-01-31T00:00:00Z, got {quoted(now)}") from None
    if ts is None or pd.isna(ts):
        raise InvalidInputError(f"now must be a time, got {quoted(now)}")
    return ts


def demand_scores(df: pd.DataFrame, by: str, **kwargs: Any) -> pd.DataFrame:
    """:func:`theme_scores` grouped by any column (a tag column, a product area, a channel)."""
    return theme_scores(df, theme_col=by, **kwargs)


# Tags that mark feedback which asks for nothing: such themes are shown, not ranked against asks
NON_ASK_TAGS = frozenset({"praise", "praise_or_experience", "thanks", "compliment", "positive_feedback"})


def non_ask_themes(items: pd.DataFrame, *, theme_col: str = "theme", tag_col: str = "tags",
                   non_ask_tags: Sequence[str] | frozenset[str] = NON_ASK_TAGS, min_share: float = 0.5) -> list[Any]:
    """Themes that are not asks: at least ``min_share`` of their items carry a non-ask tag (praise, thanks).

    A praise theme ("the new board view is fantastic") ranked 9th by priority in the sample report, among
    bugs and requests; keep such themes out of :func:`theme_scores` and show them on their own. Tags may be
    one string per row or a list (multi-label). Outliers (-1) are never returned.

    >>> items = pd.DataFrame({"theme": [0, 0, 1, 1], "tags": [["praise"], ["praise"], ["bug"], ["praise"]]})
    >>> non_ask_themes(items)
    [0, 1]
    >>> non_ask_themes(items, min_share=0.6)
    [0]
    """
    if not isinstance(items, pd.DataFrame):  # a list was "'list' object has no attribute 'columns'"
        raise InvalidInputError(f"non_ask_themes expects a DataFrame, got {type(items).__name__}")
    for col in (theme_col, tag_col):
        if not isinstance(col, Hashable) or col not in items.columns:
            raise ColumnError(f"column {quoted(col)} not found; available columns: {quoted_list(items.columns)}")
    if (isinstance(min_share, (bool, np.bool_)) or not isinstance(min_share, numbers.Real)
            or not 0 < min_share <= 1):  # "0.5" was a TypeError from the comparison
        raise InvalidInputError(f"min_share must be a number in (0, 1], got {min_share!r}")
    themes = items[theme_col]
    unhashable = themes.map(lambda v: not isinstance(v, Hashable))
    if unhashable.any():
        raise ColumnError(f"theme column {quoted(theme_col)} holds lists or objects in rows "
                          f"{list(items.index[unhashable][:10])}; give one theme per row")
    if isinstance(non_ask_tags, (str, bytes)):  # "praise" was the tags p, r, a, i, s and e
        raise InvalidInputError(f"non_ask_tags must be a list of tags, got the text {quoted(non_ask_tags)}; "
                                f"write [{quoted(non_ask_tags)}] for one tag")
    wanted = set(non_ask_tags)

    def is_non_ask(tags: Any) -> bool:
        values = tags if isinstance(tags, (list, tuple, set, np.ndarray)) else [tags]
        return any(isinstance(t, str) and t in wanted for t in values)

    flags = items[tag_col].map(is_non_ask)
    share = flags.groupby(themes.where(~themes.map(_blank))).mean()  # a blank theme is no theme (theme_scores)
    # an outlier of a theme column pandas made float (-1.0) was returned as a non-ask theme
    return [t for t, v in share.items() if v >= min_share and t != "outlier" and _number(t) != -1]

