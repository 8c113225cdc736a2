"""Multi-label label issues: every tag judged (cleanlab's one-vs-rest method) vs the first tag only.

App reviews (Maalej et al., train split: 2,568 reviews, 4 tags, 1–3 a review), frozen all-MiniLM-L6-v2
embeddings. 5% of the rows get one planted error: a wrong extra tag, a tag swapped for another, or (rows with
two tags or more) a tag left off. ``TagClassifier.find_label_issues`` is scored by recall and precision on the
planted rows, against the rule it used before round 14 (out-of-fold probabilities of a multi-class model of
each row's first tag, confident learning on that tag, and no row listed whose suggested tag it already
carries). Quality figures only (no timing). Usage: python benchmarks/label_issues_multilabel.py [--seeds 3]
Writes benchmarks/results/label_issues_multilabel.json.
"""

from __future__ import annotations

import argparse
import random
import warnings

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder, TagClassifier
from feedback_nlp._heads import FitSettings
from feedback_nlp._label_issues import label_issue_mask


def first_tag_rule(emb: np.ndarray, rows: list[list[str]], classes: list[str], seed: int) -> set[int]:
    """The rows the previous find_label_issues listed: only the first tag judged."""
    index = {c: j for j, c in enumerate(classes)}
    first = np.array([index[r[0]] for r in rows])
    settings = FitSettings(C=10.0, cv=5, random_state=seed)
    oof = np.zeros((len(rows), len(classes)))
    for tr, te in settings.folds(first, emb):
        m = settings.logreg().fit(emb[tr], first[tr])
        oof[np.ix_(te, m.classes_)] = m.predict_proba(emb[te])
    mask, _ = label_issue_mask(first, oof, method="builtin")
    best = oof.argmax(axis=1)
    return {i for i in np.flatnonzero(mask) if classes[best[i]] not in rows[i]}


def plant(rows: list[list[str]], tags: list[str], seed: int) -> tuple[list[list[str]], dict[int, str]]:
    rng = random.Random(seed)
    noisy, planted = [list(r) for r in rows], {}
    for i in rng.sample(range(len(rows)), int(0.05 * len(rows))):
        r, other = noisy[i], [t for t in tags if t not in noisy[i]]
        kind = rng.choice(["extra", "swapped", "missing"])
        kind = "swapped" if kind == "missing" and len(r) < 2 else kind
        if kind == "missing":
            r.pop(rng.randrange(len(r)))
        elif kind == "extra":
            r.append(rng.choice(other))
        else:
            r[rng.randrange(len(r))] = rng.choice(other)
        planted[i] = kind
    return noisy, planted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    train = pd.read_csv(data_dir() / "app_reviews_maalej" / "train.csv")
    clean = [s.split("|") for s in train["labels"]]
    tags = sorted({t for r in clean for t in r})
    emb = Embedder(cache=True, backend="torch").encode(train["text"].tolist())
    rows = []
    for seed in range(args.seeds):
        noisy, planted = plant(clean, tags, seed)
        found = {"every tag": set(TagClassifier(Embedder(cache=True), cv=5, multi_label=True)
                                  .find_label_issues(emb, noisy, method="builtin")["index"]),
                 "first tag (before)": first_tag_rule(emb, noisy, tags, seed)}
        for method, listed in found.items():
            hits = listed & set(planted)
            row = {"seed": seed, "method": method, "recall": len(hits) / len(planted),
                   "precision": len(hits) / max(len(listed), 1), "flagged": len(listed),
                   **{f"recall_{k}": len(hits & {i for i, v in planted.items() if v == k})
                      / max(1, sum(v == k for v in planted.values())) for k in ("extra", "swapped", "missing")}}
            print(row, flush=True)
            rows.append(row)
    df = pd.DataFrame(rows)
    summary = df.groupby("method", sort=False).mean(numeric_only=True).drop(columns="seed").round(4)
    print(summary.to_markdown())
    save("label_issues_multilabel", {"dataset": "app reviews (Maalej) train", "n": len(train),
                                     "embedding": "all-MiniLM-L6-v2 (frozen)", "planted": "5% of rows, one error each",
                                     "seeds": args.seeds, "runs": rows,
                                     "summary": summary.reset_index().to_dict("records")})


if __name__ == "__main__":
    main()
