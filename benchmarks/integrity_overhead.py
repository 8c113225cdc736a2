"""What the integrity checks of issue 13 cost: verified cache reads, chunk hashing for --resume, and manifest
verification of a saved model.

Usage: python benchmarks/integrity_overhead.py [--rows 50000] [--dim 384]
Writes benchmarks/results/integrity_overhead.json. Each figure is the best of 3 runs. The baseline of the cache
read is the same SELECT and ``np.frombuffer`` without the checks (what the cache did before). Timings taken
while other processes share the CPU are marked ``measured_under_load`` by the caller's judgement: rerun alone.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time

import numpy as np
import pandas as pd
from _common import save

from feedback_nlp._persist import verify_manifest
from feedback_nlp.batch import chunk_digest
from feedback_nlp.cache import EmbeddingCache, text_key
from feedback_nlp.tagging import bundled_models


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--under-load", action="store_true", help="mark the timings as measured under load")
    args = ap.parse_args()

    path = os.path.join(tempfile.mkdtemp(), "c.sqlite")
    cache = EmbeddingCache(path)
    texts = [f"feedback text number {i}" for i in range(args.rows)]
    cache.put("m@1", texts, np.random.default_rng(0).normal(size=(args.rows, args.dim)).astype(np.float32))

    con = sqlite3.connect(path)

    def raw_read() -> None:  # what get() did before the checks: keys, the same queries, positions
        found = {}
        keys = [text_key(t) for t in texts]
        for i in range(0, len(keys), 5000):
            chunk = list(set(keys[i:i + 5000]))
            q = f"SELECT key, dim, vec FROM vectors WHERE model_id = ? AND key IN ({','.join('?' * len(chunk))})"
            found.update((k, np.frombuffer(v, dtype="<f4")) for k, _, v in con.execute(q, ["m@1", *chunk]).fetchall())
        {i: found[k] for i, k in enumerate(keys) if k in found}

    verified = best_of(lambda: cache.get("m@1", texts))
    baseline = best_of(raw_read)
    chunk = pd.DataFrame({"_row": np.arange(5000), "id": [f"id{i}" for i in range(5000)],
                          "text": ["the CSV export cuts off long descriptions, please fix it"] * 5000,
                          "_reason": None, "_reject_text": None})
    digest = best_of(lambda: chunk_digest(chunk))
    model = bundled_models()["request-type"]
    manifest = best_of(lambda: verify_manifest(model))
    result = {
        "rows": args.rows, "dim": args.dim,
        "cache_get_verified_s": round(verified, 3), "cache_get_unchecked_s": round(baseline, 3),
        "cache_check_overhead": round(verified / baseline - 1, 3),
        "cache_get_verified_rows_per_s": round(args.rows / verified),
        "chunk_digest_ms_per_5000_rows": round(digest * 1000, 2),
        "verify_manifest_request_type_ms": round(manifest * 1000, 2),
        "measured_under_load": bool(args.under_load),
    }
    print(result)
    save("integrity_overhead", result)


if __name__ == "__main__":
    main()
