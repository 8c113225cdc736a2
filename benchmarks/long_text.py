"""Long texts: ``long_text="truncate"`` (the first 254-token window) vs ``"chunk"`` (overlapping windows,
mean-pooled) on the long-text data sets, for tagging quality (frozen embeddings + the library's logistic
regression head) and embedding speed.

Usage: python benchmarks/long_text.py [--backend torch] [--per-label 150] [--only nlbse24,app_reviews]
Data: $FEEDBACK_NLP_DATA (default ../shared/datasets). Writes benchmarks/results/long_text.json.

Texts that fit the window embed identically in both modes (a test checks it), so they are embedded once and
only the long texts are embedded per mode; ``embed_s`` is the time of the long texts in that mode, and
``all_texts_s`` adds the shared short ones. ``--per-label N`` takes a seeded, label-stratified sample of N
texts per label from each split (0: everything; nlbse24 in full is 3,000 issues averaging 2,200 characters).
Quality figures are deterministic; the seconds depend on the machine's load (the JSON says so).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder
from feedback_nlp.tagging import TagClassifier

SETS = {
    # name: (folder, label column, multi-label separator)
    "nlbse24": ("nlbse24_issues", "label", None),
    "app_reviews": ("app_reviews_maalej", "labels", "|"),
}


def _split(folder: str, split: str, label_col: str, per_label: int) -> pd.DataFrame:
    df = pd.read_csv(data_dir() / folder / f"{split}.csv", keep_default_na=False)
    if per_label:
        df = df.groupby(label_col).sample(n=per_label, random_state=0)
    return df.reset_index(drop=True)


def measure(name: str, backend: str, per_label: int) -> list[dict]:
    folder, label_col, sep = SETS[name]
    tr, te = (_split(folder, s, label_col, per_label if sep is None else 0) for s in ("train", "test"))
    probe = Embedder(cache=None, backend=backend, long_text="truncate")
    texts = probe.prepare(tr["text"].tolist() + te["text"].tolist())
    is_long = np.array([len(probe.tokenizer.encode(t, add_special_tokens=False).ids) > probe.window for t in texts])
    short_idx, long_idx = np.flatnonzero(~is_long), np.flatnonzero(is_long)
    t = time.perf_counter()
    short_vectors = probe.encode([texts[i] for i in short_idx])
    short_s = time.perf_counter() - t
    rows = []
    for mode in ("truncate", "chunk"):
        emb = Embedder(cache=None, backend=backend, long_text=mode)
        long_texts = [texts[i] for i in long_idx]
        t = time.perf_counter()
        long_vectors = emb.encode(long_texts)
        seconds = time.perf_counter() - t
        vectors = np.empty((len(texts), short_vectors.shape[1]), dtype=np.float32)
        vectors[short_idx], vectors[long_idx] = short_vectors, long_vectors
        windows = [len(emb._windows(x)) for x in long_texts] if mode == "chunk" else [1] * len(long_texts)
        Xtr, Xte = vectors[: len(tr)], vectors[len(tr):]
        clf = TagClassifier(emb, random_state=0, multi_label=sep is not None).fit(Xtr, tr[label_col].tolist(), sep=sep)
        report = clf.evaluate(Xte, te[label_col].tolist(), sep=sep)
        row = {"dataset": name, "mode": mode, "backend": emb.backend, "n_train": len(tr), "n_test": len(te),
               "long_texts": len(long_texts), "long_share": round(len(long_texts) / len(texts), 4),
               "windows_per_long_text": round(float(np.mean(windows)), 2) if windows else None,
               "accuracy": round(report.accuracy, 4), "micro_f1": round(report.micro_f1, 4),
               "macro_f1": round(report.macro_f1, 4), "embed_s": round(seconds, 1),
               "long_texts_per_s": round(len(long_texts) / seconds, 2) if long_texts else None,
               "all_texts_s": round(seconds + short_s, 1)}
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="torch", help="embedding backend (default torch: exact fp32)")
    ap.add_argument("--per-label", type=int, default=150, help="nlbse24 texts per label and split (0: all)")
    ap.add_argument("--only", default=",".join(SETS), help="comma-separated subset of " + ", ".join(SETS))
    args = ap.parse_args()
    rows = [r for name in args.only.split(",") for r in measure(name, args.backend, args.per_label)]
    save("long_text", {"rows": rows, "cpus": len(os.sched_getaffinity(0)), "per_label": args.per_label,
                       "timing_note": "measured under load (other processes shared the 2 CPUs); quality is deterministic",
                       "command": f"python benchmarks/long_text.py --per-label {args.per_label}"})
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
