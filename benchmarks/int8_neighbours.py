"""What the faster numeric backends cost where ranks matter: neighbour agreement and duplicate recall@5 against
exact fp32, and how much an int8 vector depends on the texts batched with it.

- Neighbours: every item of a set queries the rest (cosine); agreement = the share of its fp32 top-5 that the
  backend's top-5 holds, averaged over queries.
- Duplicate recall@5: an item of the same intent counted as a duplicate (banking77 and hwu64 test splits, the
  held-out check of duplicates_quality.py); share of queries with one in the top 5.
- Batch dependence: each of ``--batch-texts`` sentences embedded alone and inside one call with all of them;
  cosine of the two vectors (mean and min). fp32 padding is masked, so its figure is the floor of the method.

    python benchmarks/int8_neighbours.py
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import save
from themes_quality import load_set

from feedback_nlp import Embedder

BACKENDS = ("torch", "torch-bf16", "torch-int8", "onnx-int8")


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _top5(X: np.ndarray) -> np.ndarray:
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1, kind="stable")[:, :5]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="banking77,hwu64")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--batch-texts", type=int, default=300)
    ap.add_argument("--name", default="int8_neighbours")
    args = ap.parse_args()
    backends = args.backends.split(",")
    results: dict = {"sets": {}, "batch_dependence": {}}
    for name in args.sets.split(","):
        texts, y = load_set(name)
        vecs = {}
        for b in backends:
            t = time.perf_counter()
            vecs[b] = _unit(Embedder(backend=b).encode(texts))
            print(f"{name} {b}: embedded {len(texts)} in {time.perf_counter() - t:.1f} s", flush=True)
        ref = _top5(vecs["torch"])
        rows = {}
        for b in backends:
            top = ref if b == "torch" else _top5(vecs[b])
            agree = np.mean([len(set(a) & set(r)) / 5 for a, r in zip(top.tolist(), ref.tolist())])
            recall = float(np.mean((y[top] == y[:, None]).any(axis=1)))
            cos = float(np.mean(np.sum(vecs[b] * vecs["torch"], axis=1)))
            rows[b] = {"top5_agreement_with_fp32": round(float(agree), 4), "duplicate_recall@5": round(recall, 4),
                       "cosine_to_fp32_mean": round(cos, 4)}
            print(name, b, rows[b], flush=True)
        results["sets"][name] = {"n": len(texts), "backends": rows}
    texts = load_set("banking77")[0][: args.batch_texts]
    for b in backends:
        emb = Embedder(backend=b)
        together = _unit(emb.encode(texts))
        alone = _unit(np.vstack([emb.encode([t]) for t in texts]))
        cos = np.sum(together * alone, axis=1)
        results["batch_dependence"][b] = {"texts": len(texts), "cosine_mean": round(float(cos.mean()), 4),
                                          "cosine_min": round(float(cos.min()), 4)}
        print("batch dependence", b, results["batch_dependence"][b], flush=True)
    print("wrote", save(args.name, results))


if __name__ == "__main__":
    sys.exit(main())
