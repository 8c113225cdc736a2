"""Label-issue detection: built-in confident learning vs cleanlab vs the previous rule, on planted flips.

banking77 train (10,003 support questions, 77 intents), frozen all-MiniLM-L6-v2 embeddings, out-of-fold
probabilities from TagClassifier's own logistic regression (C=10, 5 stratified folds: what
``TagClassifier.find_label_issues`` computes). A share of the labels (5% and 10%) is flipped to a uniformly
random other intent; every method sees the same probabilities, and is scored by recall and precision on the
flipped rows. Quality figures only (no timing). Usage: python benchmarks/label_issues.py [--seeds 3]
Writes benchmarks/results/label_issues.json.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder
from feedback_nlp._heads import FitSettings
from feedback_nlp._label_issues import confident_learning_mask


def out_of_fold(emb: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    settings = FitSettings(C=10.0, cv=5, random_state=seed)
    oof = np.zeros((len(y), k))
    for tr, te in settings.folds(y, emb):
        m = settings.logreg().fit(emb[tr], y[tr])
        oof[np.ix_(te, m.classes_)] = m.predict_proba(emb[te])
    return oof


def previous_rule(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The rule find_label_issues used before (issue #14): given label below its class's mean
    self-confidence and the top class at or above its own."""
    k = P.shape[1]
    thr = np.array([P[y == c, c].mean() if (y == c).any() else 1.0 for c in range(k)])
    best = P.argmax(axis=1)
    given = P[np.arange(len(y)), y]
    return (best != y) & (given < thr[y]) & (P[np.arange(len(y)), best] >= thr[best])


def score(mask: np.ndarray, flipped: np.ndarray) -> dict:
    tp = int((mask & flipped).sum())
    n = int(mask.sum())
    return {"flagged": n, "recall": round(tp / int(flipped.sum()), 4), "precision": round(tp / n, 4) if n else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    from cleanlab.filter import find_label_issues

    train = pd.read_csv(data_dir() / "banking77" / "train.csv")
    classes = sorted(train["label"].unique())
    y_true = train["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    emb = Embedder(cache=True, backend="torch").encode(train["text"].tolist())
    rows = []
    for rate in (0.05, 0.10):
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            flipped = np.zeros(len(y_true), dtype=bool)
            flipped[rng.choice(len(y_true), int(rate * len(y_true)), replace=False)] = True
            y = y_true.copy()
            shift = rng.integers(1, len(classes), flipped.sum())  # any other intent, uniformly
            y[flipped] = (y_true[flipped] + shift) % len(classes)
            P = out_of_fold(emb, y, len(classes), seed)
            for method, mask in (("builtin", confident_learning_mask(y, P)),
                                 ("cleanlab", np.asarray(find_label_issues(y, P), dtype=bool)),
                                 ("previous rule", previous_rule(y, P))):
                row = {"noise": rate, "seed": seed, "method": method, **score(mask, flipped)}
                print(row, flush=True)
                rows.append(row)
    df = pd.DataFrame(rows)
    summary = df.groupby(["noise", "method"], sort=False)[["recall", "precision", "flagged"]].mean().round(4)
    print(summary.to_markdown())
    save("label_issues", {"dataset": "banking77 train", "n": len(y_true), "embedding": "all-MiniLM-L6-v2 (frozen)",
                          "probabilities": "out-of-fold, TagClassifier logistic regression C=10, 5 folds",
                          "flips": "uniform to another intent", "seeds": args.seeds, "runs": rows,
                          "summary": summary.reset_index().to_dict("records")})


if __name__ == "__main__":
    main()
