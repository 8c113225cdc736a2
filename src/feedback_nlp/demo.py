"""``feedback-nlp demo``: the library end to end on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import load_sample
from .embedding import BaseEmbedder
from .records import read_feedback


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def run(out_dir: Path, embedder: BaseEmbedder, n_examples: int = 4) -> dict:
    """Run the demo, print what it finds and write its outputs under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records, rejected = read_feedback(load_sample())
    _section("Sample")
    print(f"{len(records)} feedback items from {records['source'].nunique()} channels, "
          f"{records['account_id'].nunique()} accounts, {len(rejected)} rejected")
    vectors = embedder.encode(records["text"].tolist())
    print(f"embedded with {embedder.model_id} -> {vectors.shape}")

    _section("Nearest neighbours")
    rng = np.random.default_rng(0)
    for i in rng.choice(len(records), size=min(n_examples, len(records)), replace=False):
        scores = vectors @ vectors[i]
        scores[i] = -1
        print(f"\n  {records['id'][i]}: {records['text'][i][:90]}")
        for j in np.argsort(-scores)[:3]:
            print(f"    {scores[j]:.3f}  {records['id'][j]}: {records['text'][j][:80]}")
    return {"records": records, "vectors": vectors}
