"""Reading throughput: the row-level-error CSV reader and the shared validator against pandas' C reader.

The validated path does what every command does before embedding: parse (with line numbers and row-level
errors), clean (HTML, replies, signatures, PII), and check ids, texts, dates and revenue. Input: the bundled
sample repeated ``--copies`` times (3,000 rows each), written as CSV and JSONL to a temporary folder.

Run: ``python benchmarks/ingest.py [--copies 20]`` (writes ``benchmarks/results/ingest.json``). Timings depend on
the machine's load: run it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import save

from feedback_nlp.cleaning import clean_text
from feedback_nlp.datasets import load_sample
from feedback_nlp.records import iter_feedback, iter_table_chunks


def _rate(fn) -> dict:
    t = time.perf_counter()
    rows = fn()
    seconds = time.perf_counter() - t
    return {"rows": rows, "seconds": round(seconds, 2), "rows_s": round(rows / seconds)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--under-load", action="store_true", help="label the figures as measured under load")
    args = ap.parse_args()
    base = load_sample()
    df = pd.concat([base] * args.copies, ignore_index=True)
    df["id"] = [f"r{i}" for i in range(len(df))]
    folder = Path(tempfile.mkdtemp())
    csv, jsonl = folder / "big.csv", folder / "big.jsonl"
    df.to_csv(csv, index=False)
    df.to_json(jsonl, orient="records", lines=True, force_ascii=False)
    runs = {
        "pandas_read_csv (no row-level errors, baseline)": _rate(
            lambda: sum(len(c) for c in pd.read_csv(csv, chunksize=5000, dtype=str, keep_default_na=False))),
        "raw_csv_chunks (line numbers, row-level errors)": _rate(lambda: sum(len(c) for c in iter_table_chunks(csv, 5000))),
        "raw_jsonl_chunks": _rate(lambda: sum(len(c) for c in iter_table_chunks(jsonl, 5000))),
        "clean_text only": _rate(lambda: len([clean_text(t) for t in df["text"]])),
        "validated_csv (what every command reads)": _rate(
            lambda: sum(len(fb) for fb in iter_feedback(csv, chunk_size=5000, keep_columns=False))),
        "validated_jsonl": _rate(lambda: sum(len(fb) for fb in iter_feedback(jsonl, chunk_size=5000, keep_columns=False))),
    }
    result = {"rows": len(df), "cpu_count": os.cpu_count(), "measured_under_load": args.under_load, "runs": runs}
    path = save("ingest", result)
    for name, r in runs.items():
        print(f"{name:50} {r['rows_s']:>8} rows/s ({r['seconds']} s)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
