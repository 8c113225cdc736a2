"""Batch tagging benchmark: rows/s single process and on a 2-worker LocalCluster, peak RSS at two input
sizes (flat memory), and a fully cached re-run. Input: real texts from $FEEDBACK_NLP_DATA repeated with light
variations. Usage: python benchmarks/batch.py [--rows 200000] [--small 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp.tagging import bundled_models

CHILD = """
import json, resource, sys, time
from feedback_nlp.batch import tag_file
t = time.perf_counter()
s = tag_file(sys.argv[1], sys.argv[2], sys.argv[3], chunk_size=5000, engine=sys.argv[4], progress=False, cache=sys.argv[5])
print(json.dumps({"seconds": time.perf_counter() - t, "rows": s.rows_in, "errors": s.rows_error,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_input(path: Path, n: int) -> None:
    d = data_dir()
    base = pd.concat([pd.read_csv(d / f"{s}/train.csv").text for s in ("banking77", "hwu64")] +
                     [pd.read_csv(d / "app_reviews_maalej/train.csv").text]).tolist()
    rng = np.random.default_rng(0)
    prefixes = ["", "", "Hi, ", "FYI: ", "Customer says: ", "Update - ", "Again: "]
    suffixes = ["", "", " Thanks!", " Please help.", " (ticket)", " This is urgent."]
    idx = rng.integers(0, len(base), n)
    texts = [prefixes[rng.integers(len(prefixes))] + base[i] + suffixes[rng.integers(len(suffixes))] for i in idx]
    pd.DataFrame({"id": [f"R{i:07d}" for i in range(n)], "text": texts}).to_parquet(path, index=False)


def run(model, src, out, engine, cache) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, str(model), str(src), str(out), engine, str(cache)],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    model = bundled_models()["request-type"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in (args.small, args.rows):
            make_input(tmp / f"in{n}.parquet", n)
        cache = tmp / "cache.sqlite"
        small = run(model, tmp / f"in{args.small}.parquet", tmp / "o_small.parquet", "local", tmp / "c_small.sqlite")
        results["local_small"] = small
        cold = run(model, tmp / f"in{args.rows}.parquet", tmp / "o1.parquet", "local", cache)
        results["local_cold"] = cold
        warm = run(model, tmp / f"in{args.rows}.parquet", tmp / "o2.parquet", "local", cache)
        results["local_cached_rerun"] = warm
        if not args.skip_dask:
            dask_run = run(model, tmp / f"in{args.rows}.parquet", tmp / "o3.parquet", "dask", tmp / "c_dask.sqlite")
            results["dask_2_workers_cold"] = dask_run
    for k, v in results.items():
        v["rows_s"] = v["rows"] / v["seconds"]
        print(f"{k:22s} rows {v['rows']:>8}  {v['seconds']:8.1f} s  {v['rows_s']:8.0f} rows/s  peak RSS {v['peak_rss_mb']:.0f} MB")
    save("batch", results)


if __name__ == "__main__":
    main()
