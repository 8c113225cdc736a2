"""Calibration when training texts repeat: banking77, 8 labelled texts per intent (draw 0), each row once and
each row twice, frozen head + words, scored on the test split.

Usage: python benchmarks/repeated_rows.py [--name NAME]

Feedback repeats itself (the same "Great app!" or the same template ticket many times). A repeated text whose
copy sits in the training folds answers its twin in the out-of-fold scores the temperature is fitted on, so the
model is calibrated to trust itself too much. Since the seventh round, identical rows share a fold (and a side
of ``fit(holdout=...)``). Writes ``benchmarks/results/repeated_rows-NAME.json``.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import data_dir, save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="cpu")
    ap.add_argument("--cache", default=None, help="embedding cache (sqlite)")
    a = ap.parse_args()

    from feedback_nlp import Embedder
    from feedback_nlp.evaluation import calibration
    from feedback_nlp.tagging import TagClassifier

    folder = data_dir() / "banking77"
    tr, te = pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "test.csv")
    label = next(c for c in tr.columns if c != "text")
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(tr[label].values == c), 8, replace=False)
                          for c in sorted(tr[label].unique())])
    emb = Embedder(cache=a.cache) if a.cache else Embedder()
    texts = tr.text.values[idx].tolist()
    x_train, x_test = emb.encode(texts), emb.encode(te.text.tolist())
    rows = {}
    for name, reps in (("each row once", 1), ("each row twice", 2)):
        clf = TagClassifier(emb, random_state=0).fit(np.vstack([x_train] * reps), list(tr[label].values[idx]) * reps,
                                                     texts=texts * reps)
        P = clf.predict_proba(x_test, texts=te.text.tolist())
        classes = list(P.columns)
        y = np.array([classes.index(v) for v in te[label]])
        conf, ece = calibration(P.to_numpy(), y, multi_label=False)
        rows[name] = {"accuracy": round(float((P.to_numpy().argmax(1) == y).mean()), 4),
                      "mean_top_probability": round(conf, 4), "ece": round(ece, 4)}
        print(f"{name:16s} {rows[name]}")
    save(f"repeated_rows-{a.name}", {"data": "banking77, 8 per intent, draw 0", "rows": rows})


if __name__ == "__main__":
    main()
