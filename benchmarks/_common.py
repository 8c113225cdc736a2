"""Shared helpers of the benchmark scripts: data location, timing, peak memory, result files."""

from __future__ import annotations

import json
import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from feedback_nlp.datasets import benchmark_data_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def data_dir() -> Path:
    path = benchmark_data_dir()
    if not path.exists():
        raise SystemExit(f"benchmark data not found at {path}; set FEEDBACK_NLP_DATA to the datasets folder")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer(store: dict, key: str):
    t = time.perf_counter()
    yield
    store[key] = round(time.perf_counter() - t, 2)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
