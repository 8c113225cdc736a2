"""Zero-shot tagging benchmark: tag names, names + one-line descriptions, and self-training on the backlog.

Usage: python benchmarks/zero_shot.py [--only banking77,hwu64,app_reviews] [--vectors /tmp/vectors]
Data: $FEEDBACK_NLP_DATA (default ../shared/datasets). The train split plays the team's unlabelled backlog
(its labels are never read, except for the 2 examples per tag of the "+ examples" row); every figure is on
the test split, which self-training never sees. Descriptions: benchmarks/zero_shot_tags.py, written once.
``--vectors DIR`` keeps the frozen embeddings of each split as .npy files there, so a rerun skips encoding.
Writes benchmarks/results/zero_shot.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import cached_vectors, data_dir, save
from sklearn.metrics import f1_score
from zero_shot_tags import TAGS, name_of

from feedback_nlp import Embedder
from feedback_nlp.tagging import TagClassifier
from feedback_nlp.taxonomy import Taxonomy

FOLDERS = {"banking77": "banking77", "hwu64": "hwu64", "app_reviews": "app_reviews_maalej"}


def scores(pred: list[str], truth: list[list[str]]) -> dict:
    """Accuracy (a prediction is right when it is one of the row's tags) and macro-F1 on the first tag."""
    hit = np.mean([p in t for p, t in zip(pred, truth)])
    primary = [p if p in t else t[0] for p, t in zip(pred, truth)]  # multi-label rows: credit any true tag
    return {"accuracy": round(float(hit), 4),
            "macro_f1": round(float(f1_score(primary, pred, average="macro", zero_division=0)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--vectors", default=None, help="folder for the frozen embeddings of each split (.npy)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    cache = Path(args.vectors) if args.vectors else None
    emb = Embedder(cache=None, backend="torch")
    rows = []
    for ds, folder in FOLDERS.items():
        if only and ds not in only:
            continue
        tr = pd.read_csv(data_dir() / folder / "train.csv")
        te = pd.read_csv(data_dir() / folder / "test.csv")
        col = "label" if "label" in te else "labels"
        truth = [str(v).split("|") for v in te[col]]
        backlog = cached_vectors(emb, tr["text"].tolist(), cache, f"{folder}_train")
        held = cached_vectors(emb, te["text"].tolist(), cache, f"{folder}_test")
        tags = TAGS[ds]
        classes = list(tags)

        def row(method: str, pred: list[str], seconds: float | None = None, **extra) -> None:
            r = {"dataset": ds, "method": method, "n_backlog": len(tr), "n_test": len(te), **scores(pred, truth),
                 "train_s": None if seconds is None else round(seconds, 1), **extra}
            print(r, flush=True)
            rows.append(r)

        # (a) and (b) as plain cosine similarity to one text per tag: the baselines the goal is measured from
        for method, texts in [("name similarity", [name_of(c) for c in classes]),
                              ("name + description similarity", [f"{name_of(c)}: {tags[c]}" for c in classes])]:
            sims = held @ emb.encode(texts).T
            row(method, [classes[i] for i in sims.argmax(axis=1)])
        # the library: several phrasings per tag (templates), optionally examples, optionally self-training
        names_only = Taxonomy([{"id": c, "name": name_of(c)} for c in classes], name=ds)
        described = Taxonomy([{"id": c, "name": name_of(c), "description": tags[c]} for c in classes], name=ds)
        first = tr.assign(tag=tr[col].astype(str).str.split("|").str[0])
        examples = {c: first.loc[first.tag == c, "text"].head(2).tolist() for c in classes}
        with_examples = Taxonomy([{"id": c, "name": name_of(c), "description": tags[c], "examples": examples[c]}
                                  for c in classes], name=ds)
        for method, tax, self_train in [("names, templates", names_only, False),
                                        ("names + descriptions, templates", described, False),
                                        ("names + descriptions + 2 examples per tag", with_examples, False),
                                        ("names, templates, self-trained on backlog", names_only, True),
                                        ("names + descriptions, self-trained on backlog", described, True)]:
            t = time.perf_counter()
            clf = TagClassifier(emb, tax, zero_shot=True, self_train=self_train).fit(backlog if self_train else None)
            seconds = time.perf_counter() - t
            row(method, list(clf.predict(held)), seconds if self_train else None)
    base = {r["dataset"]: r["accuracy"] for r in rows if r["method"] == "name similarity"}
    for r in rows:
        r["points_over_name_similarity"] = round(100 * (r["accuracy"] - base[r["dataset"]]), 1)
    table = pd.DataFrame(rows)[["dataset", "method", "accuracy", "macro_f1", "points_over_name_similarity", "train_s"]]
    print(table.to_markdown(index=False))
    save("zero_shot" + ("-" + args.only.replace(",", "-") if args.only else ""),
         {"rows": rows, "note": "train_s measured under load (2 shared cores); accuracy on the test split; "
                                "the train split is the unlabelled backlog",
          "goal": "self-training >= 10 points over name similarity on banking77 and hwu64"})


if __name__ == "__main__":
    main()
