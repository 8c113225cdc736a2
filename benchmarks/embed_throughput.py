"""Embedding throughput: Embedder.encode per backend vs plain sentence-transformers encode, plus the cache.

Same 5,000 real texts (banking77 + hwu64 test/train from $FEEDBACK_NLP_DATA), same model, one run.
Prints a Markdown table and writes benchmarks/results/embed_throughput.json.
Usage: python benchmarks/embed_throughput.py [--n 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import data_dir, peak_rss_mb, save

from feedback_nlp import Embedder
from feedback_nlp.embedding import resolve_model


def texts(n: int) -> list[str]:
    d = data_dir()
    pool = pd.concat([pd.read_csv(d / "banking77/test.csv").text, pd.read_csv(d / "hwu64/train.csv").text,
                      pd.read_csv(d / "banking77/train.csv").text])
    return pool.drop_duplicates().sample(n, random_state=0).tolist()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--cache-n", type=int, default=10000, help="texts for the cache re-run ratio")
    args = ap.parse_args()
    data = texts(args.n)
    rows = []
    from sentence_transformers import SentenceTransformer

    _, location = resolve_model()
    t = time.perf_counter()
    st = SentenceTransformer(str(location), device="cpu", local_files_only=True)
    load_s = time.perf_counter() - t
    st.encode(data[:256])  # warm-up
    t = time.perf_counter()
    ref = st.encode(data, batch_size=64, normalize_embeddings=True)
    st_s = time.perf_counter() - t
    rows.append({"path": "sentence-transformers encode (fp32, batch 64)", "sentences_s": args.n / st_s,
                 "ratio_vs_st": 1.0, "load_s": load_s, "cos_mean": 1.0, "cos_min": 1.0})
    for backend in ("torch", "torch-bf16", "onnx-int8", "auto"):
        t = time.perf_counter()
        e = Embedder(backend=backend, cache=None)
        e.encode(data[:256])
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        v = e.encode(data)
        s = time.perf_counter() - t
        cos = (v * ref).sum(axis=1)
        rows.append({"path": f"Embedder backend={backend}" + (f" -> {e.backend}" if backend == "auto" else "")
                     + f" (batch {e.batch_size}, cleaned, length-sorted)",
                     "sentences_s": args.n / s, "ratio_vs_st": st_s / s, "load_s": load_s,
                     "cos_mean": float(cos.mean()), "cos_min": float(cos.min())})
    cache_texts = texts(args.cache_n)
    with tempfile.TemporaryDirectory() as tmp:
        e = Embedder(cache=Path(tmp) / "c.sqlite")
        e.encode(["warm-up"])
        t = time.perf_counter()
        first = e.encode(cache_texts)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        again = e.encode(cache_texts)
        warm = time.perf_counter() - t
        assert np.array_equal(first, again)
    rows.append({"path": f"Embedder ({e.backend}) re-run over {args.cache_n} cached texts", "sentences_s": args.cache_n / warm,
                 "ratio_vs_st": st_s / warm, "load_s": 0.0, "cos_mean": 1.0, "cos_min": 1.0})
    table = pd.DataFrame(rows)
    print(f"{args.n} texts, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    flops = 617e6  # per sentence at ~29 tokens (issue 7); ceiling ~3,700 sentences/s on this CPU in bf16
    for r in rows[:-1]:
        r["fraction_of_ceiling"] = r["sentences_s"] / 3700
    print(f"\ncache re-run over {args.cache_n} texts vs encoding them: {cold / warm:.0f}x faster ({cold:.2f} s -> {warm:.3f} s); "
          f"peak RSS {peak_rss_mb():.0f} MB; compute ceiling ~3,700 sentences/s ({flops / 1e6:.0f} MFLOP each)")
    save("embed_throughput", {"n": args.n, "rows": rows, "cache_speedup": cold / warm, "cold_s": cold, "warm_s": warm,
                              "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
