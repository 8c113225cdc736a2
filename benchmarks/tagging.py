"""Tagging benchmark on public data sets, beside the published anchors of each SOURCE.md.

Usage: python benchmarks/tagging.py [--only banking77,hwu64,...] [--quick]
Data: $FEEDBACK_NLP_DATA (default ../shared/datasets). Prints a Markdown table and writes
benchmarks/results/tagging.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder
from feedback_nlp.tagging import TagClassifier

ANCHORS = {
    "banking77 full": "goal ≥ 0.94 (frozen LR measured 0.929)",
    "banking77 8-shot": "goal ≥ 0.87; MTEB frozen MiniLM 0.8004",
    "hwu64": "goal ≥ 0.93 (frozen LR measured 0.913)",
    "nlbse24 per-repo": "goal ≥ 0.83; SetFit mpnet 0.827",
    "app_reviews": "Maalej et al. 2016: P 0.70–0.95, R 0.80–0.90 (binary, with metadata)",
    "goemotions": "goal ≥ 0.46 (BERT-base paper); 0.503 bert-base-cased",
}


def run(name, head, tr_text, tr_y, te_text, te_y, emb, sep=None, **kw):
    t = time.perf_counter()
    clf = TagClassifier(emb, head=head, random_state=0, **kw).fit(list(tr_text), tr_y, sep=sep)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    report = clf.evaluate(list(te_text), te_y, sep=sep)
    pred_s = time.perf_counter() - t
    row = {"dataset": name, "head": head, "n_train": len(tr_text), "accuracy": report.accuracy,
           "micro_f1": report.micro_f1, "macro_f1": report.macro_f1, "train_s": round(train_s, 1),
           "predict_rows_s": round(len(te_text) / pred_s, 1), "anchor": ANCHORS.get(name, "")}
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--heads", default="logreg,finetune")
    ap.add_argument("--draws", type=int, default=5)
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    heads = args.heads.split(",")
    d = data_dir()
    # Separate caches per run keep "predict rows/s" honest: test texts are embedded inside the timing.
    emb = Embedder(cache=None, backend="torch")
    rows = []

    def want(key):
        return not only or key in only

    if want("banking77"):
        tr, te = pd.read_csv(d / "banking77/train.csv"), pd.read_csv(d / "banking77/test.csv")
        for head in heads:
            rows.append(run("banking77 full", head, tr.text, tr.label, te.text, te.label, emb))
        for head in heads if args.draws else []:  # --draws 0 skips the few-shot runs
            accs, secs = [], []
            for draw in range(args.draws):
                sub = tr.groupby("label", group_keys=False).sample(8, random_state=draw)
                r = run("banking77 8-shot", head, sub.text, sub.label, te.text, te.label, emb)
                accs.append(r["accuracy"])
                secs.append(r["train_s"])
            rows.append({**r, "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
                         "train_s": float(np.mean(secs)), "micro_f1": None, "macro_f1": None,
                         "n_train": len(sub), "note": f"mean of {args.draws} draws"})
    if want("hwu64"):
        tr, te = pd.read_csv(d / "hwu64/train.csv"), pd.read_csv(d / "hwu64/test.csv")
        for head in heads:
            rows.append(run("hwu64", head, tr.text, tr.label, te.text, te.label, emb))
    if want("nlbse24"):
        tr, te = pd.read_csv(d / "nlbse24_issues/train_with_repo.csv"), pd.read_csv(d / "nlbse24_issues/test_with_repo.csv")
        for head in heads:
            per_repo = []
            t0 = time.perf_counter()
            for repo in sorted(tr.repo.unique()):
                a, b = tr[tr.repo == repo], te[te.repo == repo]
                per_repo.append(run(f"nlbse24 {repo}", head, a.text, a.label, b.text, b.label, emb))
            rows.append({"dataset": "nlbse24 per-repo", "head": head, "n_train": len(tr),
                         "macro_f1": float(np.mean([r["macro_f1"] for r in per_repo])),
                         "accuracy": float(np.mean([r["accuracy"] for r in per_repo])), "micro_f1": None,
                         "train_s": round(time.perf_counter() - t0, 1),
                         "predict_rows_s": float(np.mean([r["predict_rows_s"] for r in per_repo])),
                         "anchor": ANCHORS["nlbse24 per-repo"], "note": "mean of 5 per-repo models"})
    if want("app_reviews"):
        tr, te = pd.read_csv(d / "app_reviews_maalej/train.csv"), pd.read_csv(d / "app_reviews_maalej/test.csv")
        for head in heads:
            rows.append(run("app_reviews", head, tr.text, tr.labels, te.text, te.labels, emb, sep="|", multi_label=True))
    if want("goemotions"):
        tr, te = pd.read_csv(d / "goemotions/train.csv"), pd.read_csv(d / "goemotions/test.csv")
        for head in heads:
            rows.append(run("goemotions", head, tr.text, tr.labels, te.text, te.labels, emb, sep="|", multi_label=True, cv=3))
    summary = [r for r in rows if not r["dataset"].startswith("nlbse24 ") or r["dataset"] == "nlbse24 per-repo"]
    table = pd.DataFrame(summary)[["dataset", "head", "n_train", "accuracy", "micro_f1", "macro_f1", "train_s",
                                   "predict_rows_s", "anchor"]]
    print(table.to_markdown(index=False, floatfmt=".4f") if hasattr(table, "to_markdown") else table.to_string())
    save("tagging" + ("-" + args.only.replace(",", "-") if args.only else ""), {"rows": rows})


if __name__ == "__main__":
    main()
