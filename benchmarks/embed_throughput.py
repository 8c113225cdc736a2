"""Embedding throughput per backend vs plain sentence-transformers ``encode``, plus the cache (issue 7).

Same real feedback-like texts for every path (app reviews, GoEmotions comments, MRPC news sentences and
banking77 queries from $FEEDBACK_NLP_DATA), each path in its own process so that load time and peak memory
are its own. Reports sentences/s, ratio to sentence-transformers' default ``encode``, fraction of this
machine's measured matrix-multiply ceiling, load time, peak RSS and cosine to torch fp32.
Usage: python benchmarks/embed_throughput.py [--n 5000]
Prints a Markdown table and writes benchmarks/results/embed_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, peak_rss_mb, save

PATHS = ["sentence-transformers", "torch", "torch-bf16", "torch-int8", "onnx-int8", "auto"]
HIDDEN, FFN, LAYERS = 384, 1536, 6  # all-MiniLM-L6-v2


def texts(n: int) -> list[str]:
    d = data_dir()
    pool = pd.concat([pd.read_csv(d / "app_reviews_maalej/train.csv").text, pd.read_csv(d / "goemotions/train.csv").text,
                      pd.read_csv(d / "mrpc_paraphrase/train.csv").text_a, pd.read_csv(d / "banking77/train.csv").text])
    pool = pool.dropna().astype(str).str.strip()
    return pool[pool.str.len() > 0].drop_duplicates().sample(n, random_state=0).tolist()


def flops_per_sentence(tokens: np.ndarray) -> float:
    """Dense layers 2·(4·h² + 2·h·f) per token per layer, plus attention 4·t²·h per layer."""
    dense = 2 * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) * tokens
    attention = 4 * tokens.astype(float) ** 2 * HIDDEN
    return float(np.mean(LAYERS * (dense + attention)))


def matmul_gflops() -> dict[str, float]:
    """Sustained GFLOP/s of an FFN-shaped matmul per dtype on this machine (the compute ceiling)."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(2048, HIDDEN, dtype=dtype), torch.randn(HIDDEN, FFN, dtype=dtype)
        for _ in range(3):
            a @ b
        t, reps = time.perf_counter(), 30
        for _ in range(reps):
            a @ b
        out[name] = 2 * 2048 * HIDDEN * FFN * reps / (time.perf_counter() - t) / 1e9
    return out


def run_one(path: str, n: int, out: Path) -> None:
    """One path in this process: load, warm up, time, write vectors + figures."""
    data = texts(n)
    t = time.perf_counter()
    if path == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        from feedback_nlp.embedding import resolve_model

        model = SentenceTransformer(str(resolve_model()[1]), device="cpu", local_files_only=True)
        model.encode(data[:256])
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        vectors = model.encode(data, normalize_embeddings=True)  # its defaults: batch 32, length-sorted
        label = "sentence-transformers encode (fp32, its defaults)"
    else:
        from feedback_nlp import Embedder

        emb = Embedder(backend=path, cache=None)
        emb.encode(data[:256])
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        vectors = emb.encode(data)
        label = f"Embedder backend={path}" + (f" -> {emb.backend}" if path == "auto" else "") + f" (batch {emb.batch_size})"
    seconds = time.perf_counter() - t
    np.save(out.with_suffix(".npy"), vectors)
    out.write_text(json.dumps({"path": label, "sentences_s": n / seconds, "load_s": load_s, "peak_rss_mb": peak_rss_mb()}))


def cache_rerun(n: int) -> dict:
    from feedback_nlp import Embedder

    data = texts(n)
    with tempfile.TemporaryDirectory() as tmp:
        e = Embedder(cache=Path(tmp) / "c.sqlite")
        e.encode(["warm-up"])
        t = time.perf_counter()
        first = e.encode(data)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        again = e.encode(data)
        warm = time.perf_counter() - t
        assert np.array_equal(first, again)
    return {"backend": e.backend, "cold_s": cold, "warm_s": warm, "speedup": cold / warm, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--cache-n", type=int, default=10000, help="texts for the cache re-run ratio")
    ap.add_argument("--one", choices=PATHS, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(args.one, args.n, args.out)
        return
    from tokenizers import Tokenizer

    from feedback_nlp.embedding import resolve_model

    tok = Tokenizer.from_file(str(Path(resolve_model()[1]) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    tokens = np.array([len(e.ids) for e in tok.encode_batch(texts(args.n))])
    flops = flops_per_sentence(tokens)
    gflops = matmul_gflops()
    ceiling = max(gflops.values()) * 1e9 / flops
    rows, vectors = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in PATHS:
            out = Path(tmp) / f"{path}.json"
            subprocess.run([sys.executable, __file__, "--one", path, "--n", str(args.n), "--out", str(out)], check=True)
            rows.append(json.loads(out.read_text()))
            vectors[path] = np.load(out.with_suffix(".npy"))
    ref = vectors["torch"]
    st_rate = rows[0]["sentences_s"]
    for path, r in zip(PATHS, rows):
        cos = (vectors[path] * ref).sum(axis=1)
        r.update(ratio_vs_st=r["sentences_s"] / st_rate, fraction_of_ceiling=r["sentences_s"] / ceiling,
                 cos_mean=float(cos.mean()), cos_min=float(cos.min()))
    cache = cache_rerun(args.cache_n)
    table = pd.DataFrame(rows)[["path", "sentences_s", "ratio_vs_st", "fraction_of_ceiling", "load_s", "peak_rss_mb",
                                "cos_mean", "cos_min"]]
    print(f"{args.n} texts, mean {tokens.mean():.1f} tokens ({flops / 1e6:.0f} MFLOP each); matmul "
          f"fp32 {gflops['fp32']:.0f} / bf16 {gflops['bf16']:.0f} GFLOP/s -> ceiling {ceiling:.0f} sentences/s\n")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print(f"\ncache re-run over {cache['n']} texts ({cache['backend']}): {cache['speedup']:.0f}x faster "
          f"({cache['cold_s']:.2f} s -> {cache['warm_s']:.3f} s)")
    save("embed_throughput", {"n": args.n, "mean_tokens": float(tokens.mean()), "mflop_per_sentence": flops / 1e6,
                              "matmul_gflops": gflops, "ceiling_sentences_s": ceiling, "rows": rows, "cache": cache})


if __name__ == "__main__":
    main()
