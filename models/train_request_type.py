"""Train the bundled ``request-type`` tag model from public data (not shipped with the project).

Sources (read from $FEEDBACK_NLP_DATA, default ../shared/datasets):
- nlbse24_issues: GitHub issues labelled bug / feature / question (NLBSE'24 tool competition);
- app_reviews_maalej: app reviews labelled bug report / feature request / user experience / rating
  (single-label rows only).

Tags: bug, feature_request, question, praise_or_experience. The model is the fine-tuned head
(``head="finetune"``) saved as a LoRA adapter (``adapter.npz``, ~1.4 MB) over the bundled all-MiniLM-L6-v2.
The frozen-embedding head is trained on the same rows for comparison (on vectors from the persistent
embedding cache when it has them; ``--skip-frozen`` leaves it out); the fine-tuned model is shipped only
if it is at least as accurate on the GitHub issues (else the frozen head is). Metrics of both, per source,
are measured on both sets' official test splits and written into the model card.

Time: the library's default epochs for these rows are 3 (its token budget), which took 4,030 s on the shared
2 cores. The recipe trains 1 epoch and adds the library's lexical channel (a word TF-IDF head fused with the
fine-tuned one): 816 s to train under load (load average 4-5), GitHub issues accuracy 0.775 (3 epochs without
words: 0.782), app reviews 0.910 (0.896). One epoch without the words lost 5.5 points on the issues
(docs/benchmarks.md, "Adapters"). The ship rule above compares on the test splits, as before.
Usage: python models/train_request_type.py [--epochs N] [--max-seq-length T] [--skip-frozen] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _results import write_results  # noqa: E402  (models/_results.py, beside this script)

from feedback_nlp import Embedder  # noqa: E402
from feedback_nlp.datasets import benchmark_data_dir  # noqa: E402
from feedback_nlp.tagging import TagClassifier  # noqa: E402
from feedback_nlp.taxonomy import Taxonomy  # noqa: E402

OUT = Path(__file__).resolve().parent / "request-type"
EPOCHS = 1  # the library's default here is 3: 4,030 s under load, over the 15-minute budget
MAX_SEQ_LENGTH = 128
LEXICAL = True  # the words win back what the two dropped epochs cost on GitHub issues
TAXONOMY = Taxonomy([
    {"id": "bug", "name": "Bug report", "description": "Something is broken, crashes, fails or behaves wrongly"},
    {"id": "feature_request", "name": "Feature request", "description": "A request for a new capability or an improvement"},
    {"id": "question", "name": "Question", "description": "A question about how to do something or how it works"},
    {"id": "praise_or_experience", "name": "Praise or experience",
     "description": "Praise, a rating, or a description of how the user experiences the product"},
], name="request-type")
NLBSE = {"bug": "bug", "feature": "feature_request", "question": "question"}
REVIEWS = {"bug_report": "bug", "feature_request": "feature_request", "user_experience": "praise_or_experience",
           "rating": "praise_or_experience"}


def load(split: str) -> pd.DataFrame:
    d = benchmark_data_dir()
    issues = pd.read_csv(d / "nlbse24_issues" / f"{split}.csv")
    issues = pd.DataFrame({"text": issues["text"].str.slice(0, 2000), "label": issues["label"].map(NLBSE), "set": "nlbse24"})
    reviews = pd.read_csv(d / "app_reviews_maalej" / f"{split}.csv")
    reviews = reviews[~reviews["labels"].str.contains("|", regex=False)]
    reviews = pd.DataFrame({"text": reviews["text"], "label": reviews["labels"].map(REVIEWS), "set": "app_reviews"})
    return pd.concat([issues, reviews], ignore_index=True)


def measure(clf: TagClassifier, test: pd.DataFrame, prefix: str = "") -> dict:
    vectors = clf.embedder_.encode(test["text"].tolist())  # embedded once, evaluated whole and per source
    report = clf.evaluate(vectors, test["label"], texts=test["text"].tolist())  # texts: for a lexical channel
    metrics = {f"{prefix}accuracy": report.accuracy, f"{prefix}macro_f1": report.macro_f1}
    for name, part in test.groupby("set"):
        r = clf.evaluate(vectors[part.index.to_numpy()], part["label"], texts=part["text"].tolist())
        metrics[f"{prefix}{name} accuracy"] = r.accuracy
        metrics[f"{prefix}{name} macro_f1"] = r.macro_f1
    print(prefix or "fine-tuned", report.to_markdown())
    return metrics


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS,
                    help=f"fine-tuning epochs (default {EPOCHS})")
    ap.add_argument("--max-seq-length", type=int, default=MAX_SEQ_LENGTH,
                    help=f"fine-tuning window in tokens (default {MAX_SEQ_LENGTH})")
    ap.add_argument("--lexical", action=argparse.BooleanOptionalAction, default=LEXICAL,
                    help="the word channel beside the head (TagClassifier(lexical=...), default on)")
    ap.add_argument("--skip-frozen", action="store_true", help="no frozen-head comparison (ships the fine-tuned model)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--results", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    start = time.perf_counter()
    train, test = load("train"), load("test")
    emb = Embedder(cache=True)
    t = time.perf_counter()
    # calibrated in sample, as shipped: 1 epoch over 3,776 rows leaves the head little to over-fit (held-out
    # nlbse24 test: mean top probability 0.781 at 0.775 accuracy, ECE 0.023), so the held-out calibration's
    # two extra fine-tunings (about 150 s) would buy little here
    tuned = TagClassifier(emb, TAXONOMY, head="finetune", finetune_epochs=args.epochs, lexical=args.lexical,
                          finetune_max_seq_length=args.max_seq_length, finetune_calibration="in_sample",
                          random_state=0).fit(train["text"], train["label"])
    tuned_s = time.perf_counter() - t
    epochs = json.loads((Path(tuned.embedder_.location) / "training.json").read_text())["epochs"]  # the epochs used
    tuned_m = measure(tuned, test)
    frozen_m: dict = {}
    frozen_s = 0.0
    if not args.skip_frozen:
        t = time.perf_counter()
        frozen = TagClassifier(emb, TAXONOMY, lexical=args.lexical, random_state=0).fit(train["text"], train["label"])
        frozen_s = time.perf_counter() - t
        frozen_m = measure(frozen, test, "frozen head: ")
    ship_tuned = args.skip_frozen or tuned_m["nlbse24 accuracy"] >= frozen_m["frozen head: nlbse24 accuracy"]
    clf, metrics = (tuned, {**tuned_m, "training seconds (2-core CPU)": round(tuned_s), **frozen_m}) if ship_tuned \
        else (frozen, {k.removeprefix("frozen head: "): v for k, v in frozen_m.items()}
              | {"training seconds (2-core CPU)": round(frozen_s)})
    total_s = time.perf_counter() - start
    compared = ("" if args.skip_frozen else "rows starting 'frozen head:' are the logistic regression on frozen "
                f"embeddings trained on the same rows, for comparison (frozen head {frozen_s:.0f} s); ")
    metrics["evaluation"] = (f"official test splits: nlbse24_issues ({(test.set == 'nlbse24').sum()}) + app_reviews_maalej "
                             f"single-label ({(test.set == 'app_reviews').sum()}); {compared}fine-tuned: "
                             f"{epochs} epoch(s), {args.max_seq_length}-token window, trained in {tuned_s:.0f} s; "
                             f"whole rebuild {total_s:.0f} s (shared 2-core CPU, measured under load: load average "
                             f"{os.getloadavg()[0]:.1f} at the end)")
    clf.save(args.out, metrics=metrics,
             description="General request-type tagger for customer feedback: bug report, feature request, question, praise/experience.",
             training_data=(f"{len(train)} public texts: nlbse24_issues train (GitHub issues, bug/feature/question; "
                            "Kallis et al., NLBSE'24) and app_reviews_maalej train, single-label rows (Maalej et al., "
                            "RE 2016), rating and user_experience merged into praise_or_experience. Issue texts "
                            "truncated to 2,000 characters."))
    print("shipped:", "fine-tuned (LoRA adapter)" if ship_tuned else "frozen head", metrics)
    if args.results:
        write_results(args.results, args, metrics)
    print(f"seconds: fine-tuned fit {tuned_s:.1f}, frozen fit {frozen_s:.1f}, whole rebuild {time.perf_counter() - start:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
