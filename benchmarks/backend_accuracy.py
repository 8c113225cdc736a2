"""Accuracy gate per embedding backend: banking77 tagging with each backend vs torch fp32 (issue 7).

The same frozen-embedding logistic-regression tagger is trained and scored on banking77's full train/test
split with vectors from each backend; a backend passes when its accuracy is within 0.5 points of fp32.
Usage: python benchmarks/backend_accuracy.py [--backends torch,torch-bf16,torch-int8,onnx-int8]
Writes benchmarks/results/backend_accuracy.json.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder
from feedback_nlp.tagging import TagClassifier

GATE_POINTS = 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="torch,torch-bf16,torch-int8,onnx-int8")
    args = ap.parse_args()
    d = data_dir() / "banking77"
    train, test = pd.read_csv(d / "train.csv"), pd.read_csv(d / "test.csv")
    rows = []
    for backend in args.backends.split(","):
        emb = Embedder(cache=None, backend=backend)
        t = time.perf_counter()
        clf = TagClassifier(emb, random_state=0).fit(train.text.tolist(), train.label.astype(str).tolist())
        report = clf.evaluate(test.text.tolist(), test.label.astype(str).tolist())
        rows.append({"backend": backend, "accuracy": report.accuracy, "macro_f1": report.macro_f1,
                     "seconds": round(time.perf_counter() - t, 1)})
        print(rows[-1], flush=True)
    ref = next(r["accuracy"] for r in rows if r["backend"] == "torch")
    for r in rows:
        r["points_vs_fp32"] = round(100 * (r["accuracy"] - ref), 2)
        r["passes_gate"] = abs(r["points_vs_fp32"]) <= GATE_POINTS
    table = pd.DataFrame(rows)
    print(f"\nbanking77 ({len(train)} train / {len(test)} test), gate: within {GATE_POINTS} points of fp32\n")
    print(table.to_markdown(index=False, floatfmt=".4f"))
    save("backend_accuracy", {"rows": rows, "n_train": len(train), "n_test": len(test)})


if __name__ == "__main__":
    main()
