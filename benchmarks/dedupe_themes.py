"""Duplicates and themes at 10k / 100k items, beside sentence-transformers' paraphrase_mining and BERTopic.

Embeddings are precomputed once for real texts (bugdup_hadoop groups + banking77 + hwu64) and replicated
with small Gaussian noise to reach the size, as the issue asks. Quality:
- duplicates: recall@10 of the HNSW index against exact search, and agreement of our pairs with
  paraphrase_mining's pairs above the same threshold;
- themes: adjusted Rand index against the intent labels of banking77/hwu64, outlier share, run time.
paraphrase_mining is a benchmark-only dependency; BERTopic runs from its own venv
(``--bertopic-python venv-bertopic/bin/python``, see _bertopic_peer.py), on the same vectors and texts.
Timings are whatever the machine's load allowed: rerun alone for clean figures.
Usage: python benchmarks/dedupe_themes.py [--sizes 10000,100000] [--bertopic-python PY] [--skip-mining]
       [--tasks pairs,themes] [--name dedupe_themes]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, peak_rss_mb, save

from feedback_nlp import Embedder
from feedback_nlp.dedupe import Deduper
from feedback_nlp.themes import ThemeModel


def base_data() -> tuple[list[str], np.ndarray, np.ndarray]:
    d = data_dir()
    b = pd.read_csv(d / "banking77/test.csv").assign(label=lambda x: "b:" + x.label)
    h = pd.read_csv(d / "hwu64/test.csv").assign(label=lambda x: "h:" + x.label)
    df = pd.concat([b, h], ignore_index=True)
    emb = Embedder(cache=True, backend="torch").encode(df.text.tolist())
    return df.text.tolist(), emb, pd.factorize(df.label)[0]


def replicate(emb: np.ndarray, labels: np.ndarray, texts: list[str], n: int, rng) -> tuple:
    idx = rng.integers(0, len(emb), n)
    X = emb[idx] + rng.normal(0, 0.01, (n, emb.shape[1])).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), labels[idx], [texts[i] for i in idx]


def timed(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, s, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--bertopic-python", default=None, help="python of a venv with bertopic installed")
    ap.add_argument("--skip-mining", action="store_true")
    ap.add_argument("--tasks", default="pairs,themes", help="comma-separated: pairs (ours, HNSW recall, paraphrase_mining), themes")
    ap.add_argument("--name", default="dedupe_themes", help="results file name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    from sklearn.metrics import adjusted_rand_score

    texts, emb, labels = base_data()
    rng = np.random.default_rng(0)
    rows = []
    tasks = set(args.tasks.split(","))
    for n in map(int, args.sizes.split(",")):
        X, y, T = replicate(emb, labels, texts, n, rng)
        ids = list(range(n))
        # --- duplicates
        if "pairs" in tasks:
            d, s_fit, m_fit = timed(lambda: Deduper(threshold=args.threshold).fit(ids=ids, embeddings=X))
            pairs, s_pairs, m_pairs = timed(lambda: d.pairs())
            rows.append({"n": n, "task": "pairs >= thr", "tool": f"feedback_nlp Deduper ({'hnsw' if d._hnsw is not None else 'exact'})",
                         "seconds": s_fit + s_pairs, "peak_mb": max(m_fit, m_pairs), "quality": f"{len(pairs)} pairs"})
            q = rng.choice(n, 2000, replace=False)
            exact = Deduper(index="exact").fit(ids=ids, embeddings=X)
            ann, s_ann, _ = timed(lambda: Deduper(index="hnsw").fit(ids=ids, embeddings=X))
            a = exact._knn(X[q], 10)[1]
            _, s_q, _ = timed(lambda: ann._knn(X, 10))
            b = ann._knn(X[q], 10)[1]
            recall = np.mean([len(set(a[i]) & set(b[i])) / 10 for i in range(len(q))])
            rows.append({"n": n, "task": "top-10 for every item", "tool": "feedback_nlp HNSW (hnswlib)", "seconds": s_ann + s_q,
                         "peak_mb": None, "quality": f"recall@10 {recall:.4f}"})
            if not args.skip_mining:
                import torch
                from sentence_transformers.util import paraphrase_mining_embeddings

                Xt = torch.from_numpy(X)
                mined, s_m, m_m = timed(lambda: paraphrase_mining_embeddings(Xt, top_k=100, max_pairs=10**9))
                mined_set = {(min(i, j), max(i, j)) for sc, i, j in mined if sc >= args.threshold}
                ours = set(zip(pairs.id_a, pairs.id_b))
                agree = len(mined_set & ours) / max(1, len(mined_set))
                rows.append({"n": n, "task": "pairs >= thr", "tool": "sentence-transformers paraphrase_mining (top_k=100)",
                             "seconds": s_m, "peak_mb": m_m, "quality": f"{len(mined_set)} pairs; ours cover {agree:.4f}"})
        # --- themes
        if "themes" in tasks:
            tm, s_t, m_t = timed(lambda: ThemeModel(min_theme_size=max(10, n // 2000)).fit(T, embeddings=X))
            rows.append({"n": n, "task": "themes", "tool": "feedback_nlp ThemeModel (kNN graph + Leiden)", "seconds": s_t, "peak_mb": m_t,
                         "quality": f"ARI {adjusted_rand_score(y, tm.labels_):.3f}, {len(tm.themes_)} themes, outliers {tm.outlier_share_:.1%}"})
            if args.bertopic_python:
                work = Path(tempfile.mkdtemp(prefix="bertopic_"))
                np.save(work / "replica.npy", X)
                (work / "replica.json").write_text(json.dumps(T))
                t = time.perf_counter()
                out = subprocess.run([args.bertopic_python, str(Path(__file__).with_name("_bertopic_peer.py")), str(work),
                                      "replica", "--min-topic-size", str(max(10, n // 2000))],
                                     capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t
                peer = json.loads(out.stdout.strip().splitlines()[-1])["replica"]
                topics = np.asarray(peer["labels"])
                rows.append({"n": n, "task": "themes", "tool": "BERTopic default (UMAP+HDBSCAN)", "seconds": peer["seconds"],
                             "peak_mb": None, "quality": f"ARI {adjusted_rand_score(y, topics):.3f}, {len(set(topics.tolist())) - (-1 in topics)} "
                                                        f"topics, outliers {(topics == -1).mean():.1%} (process wall {wall:.0f} s)"})
        print(pd.DataFrame([r for r in rows if r["n"] == n]).to_markdown(index=False, floatfmt=".2f"), flush=True)
    save(args.name, {"rows": rows, "peak_rss_mb": peak_rss_mb(), "measured_under_load": True})


if __name__ == "__main__":
    main()
