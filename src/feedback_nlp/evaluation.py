"""Honest evaluation reports for tag models: accuracy, micro/macro F1, per-tag P/R/F1, confusions, abstain.

Abstained rows (``needs_review``) count as errors in the headline figures — a model cannot look better by
abstaining — and ``coverage`` / ``accuracy_covered`` show what abstaining buys.

Example:
    >>> r = evaluate_predictions([["a"], ["b"], ["b"]], [["a"], ["a"], ["b"]], classes=["a", "b"])
    >>> round(r.accuracy, 3), round(r.macro_f1, 3)
    (0.667, 0.667)
"""

from __future__ import annotations

import numbers
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidInputError, quoted_list

__all__ = ["EvaluationReport", "best_f1_threshold", "calibration", "evaluate_predictions"]


@dataclass
class EvaluationReport:
    """What :meth:`TagClassifier.evaluate` returns; ``to_dict()``, ``per_tag`` (a DataFrame), ``to_markdown()``."""

    n: int
    multi_label: bool
    accuracy: float
    micro_f1: float
    macro_f1: float
    abstain_rate: float
    coverage: float
    accuracy_covered: float  # NaN when every row abstained (no covered row to be right or wrong on)
    per_tag: pd.DataFrame
    confused_pairs: pd.DataFrame
    per_level: dict[int, dict[str, float]] = field(default_factory=dict)
    # from the probabilities, when the report had them (NaN otherwise): see calibration()
    mean_confidence: float = float("nan")
    calibration_error: float = float("nan")
    # tags in the data that are not among ``classes`` (a model cannot predict them): scored as missed, listed here
    unknown_tags: list[Any] = field(default_factory=list)
    # each row's being right (all its tags, no abstention): what ``accuracy`` averages, and a weighted score
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "multi_label": self.multi_label, "accuracy": self.accuracy, "micro_f1": self.micro_f1,
            "macro_f1": self.macro_f1, "abstain_rate": self.abstain_rate, "coverage": self.coverage,
            # None when every row abstained: no accuracy to give (JSON has no NaN)
            "accuracy_covered": None if np.isnan(self.accuracy_covered) else self.accuracy_covered,
            "per_tag": {r["tag"]: {k: (float(r[k]) if k != "support" else int(r[k])) for k in ("precision", "recall", "f1", "support")}
                        for r in self.per_tag.to_dict("records")},
            "confused_pairs": self.confused_pairs.to_dict("records"),
            "per_level": {str(k): v for k, v in self.per_level.items()},
            "mean_confidence": None if np.isnan(self.mean_confidence) else self.mean_confidence,
            "calibration_error": None if np.isnan(self.calibration_error) else self.calibration_error,
            "unknown_tags": list(self.unknown_tags),
        }

    def to_markdown(self, max_tags: int = 30) -> str:
        """The metrics, the first ``max_tags`` tags and the confused pairs as Markdown tables."""
        if isinstance(max_tags, bool) or not isinstance(max_tags, numbers.Integral) or max_tags < 0:
            # -1 listed every tag but the last, then "… 31 more tags"
            raise InvalidInputError(f"max_tags must be a whole number of tags, 0 or more, got {max_tags!r}")
        lines = [
            "| metric | value |", "|---|---|",
            f"| rows | {self.n} |",
            f"| {'subset accuracy' if self.multi_label else 'accuracy'} | {self.accuracy:.4f} |",
            f"| micro F1 | {self.micro_f1:.4f} |", f"| macro F1 | {self.macro_f1:.4f} |",
            f"| abstain rate (needs_review) | {self.abstain_rate:.4f} |",
            f"| {'subset accuracy' if self.multi_label else 'accuracy'} on covered rows | "
            f"{'– (every row abstained)' if np.isnan(self.accuracy_covered) else f'{self.accuracy_covered:.4f}'} |",
        ]
        if not np.isnan(self.calibration_error):
            what = "mean probability of a tag" if self.multi_label else "mean top probability"
            lines += [f"| {what} | {self.mean_confidence:.4f} |",
                      f"| calibration error (ECE, 10 bins) | {self.calibration_error:.4f} |"]
        if self.unknown_tags:
            lines.append(f"| tags the model does not know (scored as missed) | {_cell(quoted_list(self.unknown_tags, 10))} |")
        for level, m in sorted(self.per_level.items()):
            rows = f" ({m['n']} rows with a tag there)" if "n" in m else ""
            # multi-label: a row is right at a depth only when all its tags there are (subset accuracy, as above)
            lines.append(f"| level {level} {'subset accuracy' if self.multi_label else 'accuracy'} / macro F1{rows} | "
                         f"{m['accuracy']:.4f} / {m['macro_f1']:.4f} |")
        lines += ["", "| tag | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for r in self.per_tag.head(max_tags).to_dict("records"):
            lines.append(f"| {_cell(r['tag'])} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {int(r['support'])} |")
        if len(self.per_tag) > max_tags:
            lines.append(f"| … {len(self.per_tag) - max_tags} more tags | | | | |")
        if len(self.confused_pairs):
            lines += ["", "| true tag | predicted as | count |", "|---|---|---|"]
            lines += [f"| {_cell(r['true'])} | {_cell(r['predicted'])} | {r['count']} |"
                      for r in self.confused_pairs.to_dict("records")]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>~|&])|(?<![^\W_])_|_(?![^\W_])")


def _cell(value: Any) -> str:
    r"""A value as one Markdown table cell, shown as the text it is: a tag ``a|b`` (allowed in Python) split
    its row into more columns, a line break ended the table, and ``<b>x</b>``, ``*x*``, ``[x](url)`` or
    ``<img onerror=…>`` rendered as markup (an HTML tag, emphasis, a link) where the report is shown. Markdown
    characters are backslash-escaped; an underscore inside a word (``feature_request``) is left as it is.

    >>> print(_cell("a|b\nc"))
    a\|b c
    >>> print(_cell("<b>x</b> *y* feature_request _z_"))
    \<b\>x\</b\> \*y\* feature_request \_z\_
    """
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def best_f1_threshold(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, *,
                      sample_weight: np.ndarray | None = None) -> tuple[float, dict[str, float]]:
    """The score cut that maximises F1 when ``score >= cut`` predicts positive, with its F1/precision/recall.

    The cut lies halfway between the best-scoring example's score and the next lower distinct score (the
    lowest score itself when every example is best called positive); among equal F1s the higher, more
    precise cut wins. Serves the per-tag thresholds of multi-label tagging and the dedupe threshold.
    ``sample_weight`` (non-negative, one per example) counts each example that many times.

    >>> best_f1_threshold([0.95, 0.9, 0.6, 0.5], [1, 1, 0, 0])[0]
    0.75
    """
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):  # "0.9" parses; "high" or None does not: say so, not numpy's ValueError
        raise InvalidInputError("scores must be numbers (similarities)") from None
    y = np.asarray(labels)
    if s.shape != y.shape or s.ndim != 1 or len(s) == 0:
        raise InvalidInputError(f"scores and labels must be 1-D of equal length, got {s.shape} and {y.shape}")
    if not np.isfinite(s).all():
        raise InvalidInputError("scores must be finite (no NaN or infinity)")
    if not np.isin(y, [0, 1]).all():
        raise InvalidInputError("labels must be 0 or 1")
    y = y.astype(int)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if w.shape != y.shape or not np.isfinite(w).all() or (w < 0).any():
        # a NaN weight made the F1 NaN, a negative one "no positive example", a short array numpy's broadcast error
        raise InvalidInputError(f"sample_weight must be one finite number >= 0 per example ({len(y)}), got shape "
                                f"{w.shape}" + ("" if w.shape != y.shape else " with NaN, infinity or a negative"))
    positives = float((w * y).sum())
    if positives <= 0:
        raise InvalidInputError("labels have no positive example; cannot calibrate a threshold")
    order = np.argsort(-s, kind="stable")
    ss, yy, ww = s[order], y[order], w[order]
    tp, fp = np.cumsum(ww * yy), np.cumsum(ww * (1 - yy))
    f1 = 2 * tp / (tp + fp + positives)
    f1 = np.where(np.r_[ss[1:] != ss[:-1], True], f1, -1)  # only cut between distinct scores
    i = int(np.argmax(f1))
    cut = float((ss[i] + ss[i + 1]) / 2) if i + 1 < len(ss) else float(ss[i])
    return cut, {"threshold": cut, "f1": float(f1[i]), "precision": float(tp[i] / max(tp[i] + fp[i], 1e-300)),
                 "recall": float(tp[i] / positives)}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def calibration(P: np.ndarray, truth: np.ndarray, *, multi_label: bool, bins: int = 10) -> tuple[float, float]:
    """How far the probabilities are from the frequencies they claim: ``(mean confidence, ECE)``.

    Multi-class (``truth``: the true class index per row, -1 for a label the model does not know): the mean
    top probability, and the expected calibration error of the top probability against being right, over
    ``bins`` equal-width bins. Multi-label (``truth``: 0/1, rows × tags): every tag probability against whether
    the row has the tag. A model that says 0.9 and is right 9 times in 10 has an ECE near 0.

    >>> P = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> conf, ece = calibration(P, np.array([0, 1, 1, 0]), multi_label=False)
    >>> round(conf, 3), round(ece, 3)
    (0.75, 0.4)
    """
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise InvalidInputError(f"bins must be a whole number >= 1, got {bins!r}")  # 0 bins gave an ECE of 0
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or len(P) == 0:
        raise InvalidInputError(f"P must be a (rows, tags) array with at least one row, got shape {P.shape}")
    if multi_label:
        conf, hit = P.ravel(), np.asarray(truth, dtype=float).ravel()
    else:
        conf, hit = P.max(axis=1), (P.argmax(axis=1) == np.asarray(truth)).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)  # (lo, hi] bins; 0 in the first
    ece = sum(abs(hit[which == b].mean() - conf[which == b].mean()) * np.mean(which == b)
              for b in range(bins) if (which == b).any())
    return float(conf.mean()), float(ece)


def _no_row(row: Any) -> bool:
    """None, NaN or pd.NA in the place of a row's tags: an abstention, as ``TagClassifier.predict`` returns it."""
    return row is None or (isinstance(row, float) and np.isnan(row)) or row is pd.NA


def _tag_set(row: Any) -> set[Any]:
    """One row's tags as a set: a list of tags, or one tag ("bug", 3, True); None or NaN (an abstention, as
    ``TagClassifier.predict`` returns it) is no tag. ``set("bug")`` would be the letters {"b", "u", "g"}."""
    if _no_row(row):
        return set()
    if isinstance(row, (str, bytes, numbers.Number)):
        return {row}
    if isinstance(row, Mapping) or not isinstance(row, Iterable):
        raise InvalidInputError(f"a row's tags must be one tag or a list of tags, got {type(row).__name__}")
    return {t for t in row if not (t is None or (isinstance(t, float) and np.isnan(t)) or t is pd.NA)}


def evaluate_predictions(
    y_true: Sequence[Sequence[Any]],
    y_pred: Sequence[Sequence[Any]],
    *,
    classes: Sequence[Any],
    multi_label: bool = False,
    abstained: Sequence[bool] | np.ndarray | None = None,
    levels: dict[int, tuple[list[list[Any]], list[list[Any]]]] | None = None,
    top_confusions: int = 10,
    probabilities: np.ndarray | None = None,
) -> EvaluationReport:
    """Score predicted tag sets against true tag sets (lists of tags per row, one tag each for multi-class).

    With ``probabilities`` (rows × ``classes``), the report also gives their :func:`calibration`. Tags of the
    data that are not in ``classes`` get a per-tag row of their own and count in the micro and macro figures
    (as scikit-learn's reports do over the labels present), and the report lists them in ``unknown_tags``.
    ``abstained`` marks the rows that gave no answer (``needs_review``): they count as wrong, give no tag
    whatever ``y_pred`` holds there, and make up ``abstain_rate``; without it, the rows whose prediction is
    None or NaN (how ``TagClassifier.predict`` abstains) are the abstaining ones.

    Raises:
        InvalidInputError: no rows (an empty evaluation has no accuracy), y_true and y_pred differ in length,
            ``classes`` lists a tag twice, or (with ``probabilities``) a row of y_true has several tags but
            ``multi_label`` is False.
    """
    # one-shot iterators are read once (a generator has no len)
    y_true = list(y_true) if isinstance(y_true, Iterator) else y_true
    y_pred = list(y_pred) if isinstance(y_pred, Iterator) else y_pred
    n = len(y_true)
    if n == 0:
        raise InvalidInputError("nothing to evaluate: no rows (an empty set has no accuracy)")
    if len(y_pred) != n or (abstained is not None and len(abstained) != n):
        raise InvalidInputError(f"y_true has {n} rows but y_pred has {len(y_pred)}"
                                + ("" if abstained is None else f" and abstained {len(abstained)}"))
    classes = list(classes)
    twice = [c for c, k in Counter(classes).items() if k > 1]
    if twice:  # a tag listed twice was a per-tag row twice and counted twice in the micro and macro figures
        raise InvalidInputError(f"classes list the tags {quoted_list(twice, 10)} more than once: give each tag once "
                                "(one column of probabilities each)")
    true_sets = [_tag_set(t) for t in y_true]
    pred_sets = [_tag_set(p) for p in y_pred]
    if abstained is not None and not all(isinstance(a, (bool, np.bool_)) for a in abstained):
        # the string "no" would be read as True: every row abstaining
        raise InvalidInputError("abstained must hold True or False for each row")
    if abstained is None:  # predict's None is a row that abstained: it counted as covered (coverage 1.0)
        abst = np.array([_no_row(p) for p in y_pred], dtype=bool)
    else:
        abst = np.asarray(abstained, dtype=bool)
    # an abstaining row gives no tag, whatever y_pred holds there: its tag counted as right in the micro and
    # macro F1 while the row counted as wrong in the accuracy
    pred_sets = [set() if a else p for p, a in zip(pred_sets, abst)]
    exact = np.array([t == p for t, p in zip(true_sets, pred_sets)], dtype=bool) & ~abst
    rows = []
    tp_all = fp_all = fn_all = 0
    known = set(classes)
    unknown = sorted({t for s in (*true_sets, *pred_sets) for t in s if t not in known}, key=str)
    # one pass over the rows (a pass per tag was minutes for thousands of tags on a large test set)
    tps: Counter = Counter()
    fps: Counter = Counter()
    fns: Counter = Counter()
    for t, p in zip(true_sets, pred_sets):
        tps.update(t & p)
        fps.update(p - t)
        fns.update(t - p)
    for c in [*classes, *unknown]:
        tp, fp, fn = tps[c], fps[c], fns[c]
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        rows.append({"tag": c, "precision": prec, "recall": rec, "f1": _f1(prec, rec), "support": tp + fn})
    per_tag = pd.DataFrame(rows, columns=["tag", "precision", "recall", "f1", "support"])
    # macro F1 over the tags the data holds or the model predicted (scikit-learn's labels): a tag predicted on rows
    # that never carry it has F1 0, and leaving it out let a model that adds a wrong tag to every row score 1.0
    scored = per_tag[(per_tag["support"] > 0) | per_tag["tag"].map(lambda c: fps[c] + tps[c] > 0).astype(bool)]
    micro_p = tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0
    micro_r = tp_all / (tp_all + fn_all) if tp_all + fn_all else 0.0
    confusions: Counter = Counter()
    for t, p, a in zip(true_sets, pred_sets, abst):
        if a:
            continue
        for missed in t - p:
            for wrong in p - t:
                confusions[(missed, wrong)] += 1
    confused = pd.DataFrame([{"true": a, "predicted": b, "count": k} for (a, b), k in confusions.most_common(top_confusions)],
                            columns=["true", "predicted", "count"])
    covered = ~abst
    per_level = {}
    for level, (lt, lp) in (levels or {}).items():
        # the rows with a tag at this depth, true or predicted: a row whose true and predicted tags both stop above
        # it ("bug" predicted "praise", top-level tags) has nothing to be right about there, and counted as right
        # it lifted a deeper level's accuracy to 1.0 on rows the model got wrong
        at = [i for i, (t, p) in enumerate(zip(lt, lp)) if _tag_set(t) or _tag_set(p)]
        if not at:
            continue
        sub = evaluate_predictions([lt[i] for i in at], [lp[i] for i in at], classes=sorted({x for i in at for x in lt[i]}),
                                   multi_label=multi_label, abstained=abst[at])
        per_level[level] = {"accuracy": sub.accuracy, "macro_f1": sub.macro_f1, "micro_f1": sub.micro_f1, "n": len(at)}
    conf = ece = float("nan")
    if probabilities is not None:
        P = np.asarray(probabilities, dtype=float)
        if P.shape != (n, len(classes)):
            raise InvalidInputError(f"probabilities have shape {P.shape}, expected {(n, len(classes))}")
        if not np.isfinite(P).all():  # a NaN made the calibration error NaN, without a word
            raise InvalidInputError("probabilities hold NaN or infinity")
        index = {c: j for j, c in enumerate(classes)}
        if multi_label:
            truth = np.zeros(P.shape)
            for i, t in enumerate(true_sets):
                truth[i, [index[c] for c in t if c in index]] = 1
        else:
            several = [i for i, t in enumerate(true_sets) if len(t) > 1]
            if several:  # the calibration would score one of the row's tags, picked by set order (hash seed)
                raise InvalidInputError(f"y_true rows {several[:10]} have several tags but multi_label=False: pass "
                                        "multi_label=True, or one tag a row")
            truth = np.array([index.get(next(iter(t)), -1) if t else -1 for t in true_sets])
        conf, ece = calibration(P, truth, multi_label=multi_label)
    return EvaluationReport(
        n=n, multi_label=multi_label, accuracy=float(exact.mean()) if n else 0.0,
        micro_f1=_f1(micro_p, micro_r), macro_f1=float(scored["f1"].mean()) if len(scored) else 0.0,
        abstain_rate=float(abst.mean()) if n else 0.0, coverage=float(covered.mean()) if n else 0.0,
        accuracy_covered=float(exact[covered].mean()) if covered.any() else float("nan"),  # 0.0 would be a score
        per_tag=per_tag.sort_values("support", ascending=False, kind="stable").reset_index(drop=True),
        confused_pairs=confused, per_level=per_level, mean_confidence=conf, calibration_error=ece,
        unknown_tags=unknown, correct=exact,
    )
