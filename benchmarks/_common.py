"""Shared helpers of the benchmark scripts: data location, timing, peak memory, result files."""

from __future__ import annotations

import json
import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from feedback_nlp.datasets import benchmark_data_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def data_dir() -> Path:
    path = benchmark_data_dir()
    if not path.exists():
        raise SystemExit(f"benchmark data not found at {path}; set FEEDBACK_NLP_DATA to the datasets folder")
    return path


def cached_vectors(emb: Any, texts: list[str], folder: Path | None, key: str, *, write: bool = True) -> np.ndarray:
    """``emb.encode(texts)``, read from ``folder/KEY.npy`` when that file holds as many rows (and written there
    when ``write``)."""
    path = folder / f"{key}.npy" if folder else None
    if path is not None and path.exists():
        v = np.load(path)
        if len(v) == len(texts):
            return v
    v = emb.encode(texts)
    if path is not None and write:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, v)
    return v


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
