"""BERTopic's default pipeline on precomputed embeddings, run in BERTopic's own environment.

Standalone (no feedback_nlp import): BERTopic pins its own dependencies, so the benchmarks run it from a
separate venv (``python3 -m venv venv-bertopic && venv-bertopic/bin/pip install torch==2.13.0 bertopic``)
and read its JSON answer. Input: a folder with ``<name>.npy`` (embeddings), ``<name>.json`` (texts) and,
optionally, ``<name>.ours.npy`` (our theme labels, to name them with BERTopic's c-TF-IDF too).
Usage: python _bertopic_peer.py FOLDER NAME [NAME ...] [--min-topic-size N]   → prints one JSON object
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def run(folder: Path, name: str, min_topic_size: int = 10) -> dict:
    from bertopic import BERTopic
    from umap import UMAP

    X = np.load(folder / f"{name}.npy")
    texts = json.loads((folder / f"{name}.json").read_text())
    t = time.perf_counter()
    # BERTopic's defaults (UMAP 15 neighbours, 5 components, min_dist 0, cosine; HDBSCAN min_topic_size 10)
    # with UMAP seeded so the run repeats
    model = BERTopic(umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42),
                     min_topic_size=min_topic_size, calculate_probabilities=False)
    topics = np.asarray(model.fit_transform(texts, embeddings=X)[0])
    seconds = time.perf_counter() - t
    info = model.get_topic_info()
    out = {"labels": topics.tolist(), "seconds": seconds,
           "names": {int(r.Topic): [w for w, _ in model.get_topic(int(r.Topic))][:3] for r in info.itertuples()}}
    ours = folder / f"{name}.ours.npy"
    if ours.exists():  # BERTopic's c-TF-IDF names for *our* clusters: same clusters, its labeller
        from bertopic.cluster import BaseCluster
        from bertopic.dimensionality import BaseDimensionalityReduction

        y = np.load(ours)
        named = BERTopic(umap_model=BaseDimensionalityReduction(), hdbscan_model=BaseCluster(),
                         calculate_probabilities=False).fit(texts, embeddings=X, y=y)
        # BERTopic renumbers topics by size: map each of our clusters to the topic its items received
        got = np.asarray(named.topics_)
        out["names_on_ours"] = {}
        for t in set(y.tolist()):
            topic = int(np.bincount(got[y == t] - got.min()).argmax() + got.min())
            out["names_on_ours"][int(t)] = [w for w, _ in named.get_topic(topic)][:3]
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    size = 10
    if "--min-topic-size" in args:
        i = args.index("--min-topic-size")
        size = int(args[i + 1])
        del args[i:i + 2]
    folder = Path(args[0])
    print(json.dumps({name: run(folder, name, size) for name in args[1:]}))
