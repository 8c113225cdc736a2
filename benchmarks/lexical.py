"""The lexical channel (``TagClassifier(lexical=True)``, the default) against the embedding alone, on every
labelled public set, with the library's own fit and evaluate: same embeddings, same folds, same seed.

Usage: python benchmarks/lexical.py [--only banking77,banking77-8shot,hwu64,nlbse24,app_reviews,goemotions]
       [--vectors DIR] [--draws 5]
The frozen embeddings of each split are computed once (or read from DIR/{set}_{split}.npy when the row counts
match, e.g. a folder an earlier run wrote with ``--vectors DIR --write-vectors``); each model is fitted on
those vectors with their texts (``fit(vectors, y, texts=texts)``) and evaluated the same way, so the two rows
of a set differ only in the words. nlbse24 follows its competition protocol (one model per repository, mean
macro-F1 of the 5); banking77 8-shot is the mean of draws 0-4 (the draws of benchmarks/few_shot.py).
Seconds are training wall-clock (the channel's TF-IDF, its out-of-fold fits and the fusion included), under
load when other jobs share the 2 cores. Writes benchmarks/results/lexical.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import cached_vectors, data_dir, save

from feedback_nlp import Embedder
from feedback_nlp.tagging import TagClassifier

SETS = ("banking77", "banking77-8shot", "hwu64", "nlbse24", "app_reviews", "goemotions")


def fit_eval(name: str, lexical: bool, xa: np.ndarray, ta: list[str], ya: list, xb: np.ndarray, tb: list[str],
             yb: list, emb: Embedder, sep: str | None = None, **kw: object) -> dict:
    t = time.perf_counter()
    clf = TagClassifier(emb, lexical=lexical, random_state=0, **kw).fit(xa, ya, texts=ta, sep=sep)
    seconds = time.perf_counter() - t
    rep = clf.evaluate(xb, yb, sep=sep, texts=tb)
    fusion = clf.lexical_fusion_
    row = {"dataset": name, "lexical": lexical, "n_train": len(ta), "accuracy": round(rep.accuracy, 4),
           "micro_f1": round(rep.micro_f1, 4), "macro_f1": round(rep.macro_f1, 4), "train_s": round(seconds, 1),
           "kept": fusion is not None,
           "words_weight": None if fusion is None else (round(float(fusion[1]), 3) if fusion.ndim == 1 else
                                                        round(float(np.mean(fusion[:, 1])), 3)),
           "vocabulary": None if clf.lexical_ is None else len(clf.lexical_.vocabulary_)}
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(SETS))
    ap.add_argument("--vectors", default=None, help="folder of cached frozen embeddings, {set}_{split}.npy")
    ap.add_argument("--write-vectors", action="store_true", help="write the embeddings computed to --vectors")
    ap.add_argument("--draws", type=int, default=5)
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - set(SETS))
    if unknown:
        raise SystemExit(f"unknown sets {unknown}; choose from {', '.join(SETS)}")
    d = data_dir()
    folder = Path(args.vectors) if args.vectors else None
    emb = Embedder(cache=None, backend="torch")
    rows: list[dict] = []

    def load(name: str, folder_name: str, label: str) -> tuple:
        tr, te = pd.read_csv(d / folder_name / "train.csv"), pd.read_csv(d / folder_name / "test.csv")
        ta, tb = tr["text"].tolist(), te["text"].tolist()
        xa = cached_vectors(emb, ta, folder, f"{name}_train", write=args.write_vectors)
        xb = cached_vectors(emb, tb, folder, f"{name}_test", write=args.write_vectors)
        return tr, te, ta, tb, xa, xb

    for name in only:
        if name in ("banking77", "banking77-8shot"):
            tr, te, ta, tb, xa, xb = load("banking77", "banking77", "label")
            if name == "banking77":
                for lexical in (False, True):
                    rows.append(fit_eval(name, lexical, xa, ta, tr.label.tolist(), xb, tb, te.label.tolist(), emb))
                continue
            for lexical in (False, True):
                draws = []
                for draw in range(args.draws):
                    take = tr.groupby("label", group_keys=False).sample(8, random_state=draw).index.to_numpy()
                    r = fit_eval(f"banking77 8-shot draw {draw}", lexical, xa[take], [ta[i] for i in take],
                                 tr.label.to_numpy()[take].tolist(), xb, tb, te.label.tolist(), emb)
                    draws.append(r)
                rows.append({**draws[-1], "dataset": name, "accuracy": round(float(np.mean([r["accuracy"] for r in draws])), 4),
                             "macro_f1": round(float(np.mean([r["macro_f1"] for r in draws])), 4),
                             "micro_f1": round(float(np.mean([r["micro_f1"] for r in draws])), 4),
                             "train_s": round(float(np.mean([r["train_s"] for r in draws])), 1),
                             "kept": f"{sum(bool(r['kept']) for r in draws)}/{len(draws)}", "draws": draws})
        elif name == "hwu64":
            tr, te, ta, tb, xa, xb = load(name, "hwu64", "label")
            for lexical in (False, True):
                rows.append(fit_eval(name, lexical, xa, ta, tr.label.tolist(), xb, tb, te.label.tolist(), emb))
        elif name == "nlbse24":
            tr = pd.read_csv(d / "nlbse24_issues/train_with_repo.csv")
            te = pd.read_csv(d / "nlbse24_issues/test_with_repo.csv")
            ta, tb = tr["text"].tolist(), te["text"].tolist()
            xa = cached_vectors(emb, ta, folder, f"{name}_train", write=args.write_vectors)
            xb = cached_vectors(emb, tb, folder, f"{name}_test", write=args.write_vectors)
            for lexical in (False, True):
                repos = []
                for repo in sorted(tr.repo.unique()):
                    ia, ib = np.flatnonzero(tr.repo == repo), np.flatnonzero(te.repo == repo)
                    repos.append(fit_eval(f"nlbse24 {repo}", lexical, xa[ia], [ta[i] for i in ia],
                                          tr.label.to_numpy()[ia].tolist(), xb[ib], [tb[i] for i in ib],
                                          te.label.to_numpy()[ib].tolist(), emb))
                rows.append({**repos[-1], "dataset": name, "n_train": len(ta),
                             "accuracy": round(float(np.mean([r["accuracy"] for r in repos])), 4),
                             "macro_f1": round(float(np.mean([r["macro_f1"] for r in repos])), 4),
                             "micro_f1": round(float(np.mean([r["micro_f1"] for r in repos])), 4),
                             "train_s": round(float(np.sum([r["train_s"] for r in repos])), 1),
                             "kept": f"{sum(bool(r['kept']) for r in repos)}/5", "repos": repos})
        else:  # the multi-label sets
            folder_name = {"app_reviews": "app_reviews_maalej", "goemotions": "goemotions"}[name]
            tr, te, ta, tb, xa, xb = load(name, folder_name, "labels")
            for lexical in (False, True):
                rows.append(fit_eval(name, lexical, xa, ta, tr["labels"].tolist(), xb, tb, te["labels"].tolist(),
                                     emb, sep="|", multi_label=True, **({"cv": 3} if name == "goemotions" else {})))
        save("lexical" + ("" if only == list(SETS) else "-" + "-".join(only)),
             {"rows": rows, "note": "partial: written after every set; train_s under load (2 shared cores)"})
    table = pd.DataFrame([{k: r.get(k) for k in ("dataset", "lexical", "n_train", "accuracy", "macro_f1", "micro_f1",
                                                 "train_s", "kept", "words_weight")} for r in rows])
    print(table.to_markdown(index=False, floatfmt=".4f"))
    save("lexical" + ("" if only == list(SETS) else "-" + "-".join(only)),
         {"rows": rows, "note": "frozen all-MiniLM-L6-v2 embeddings (256-token window), logreg head, seed 0; "
                                "train_s under load (2 shared cores)"})


if __name__ == "__main__":
    main()
