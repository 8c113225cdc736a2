"""Do themes depend on the order of the backlog? The default ThemeModel fitted on each data set as its file
lists it, then on the same items shuffled (``--shuffles`` seeded permutations): the share of items whose theme
id is the same, the agreement of the two partitions (ARI, ids ignored), the share of titles kept, and the
quality against the labels (NMI, ARI, outliers, themes) of the fit in file order.

The shuffled fits get the same vectors in the shuffled order, so only the clustering is tested; ``--reembed``
also embeds the texts afresh (no cache) in file order and in one shuffled order, as two runs of a user's job would.

Compare two revisions by running it on each, e.g. from a worktree of the older one:

    python benchmarks/themes_order.py --name themes_order
    PYTHONPATH=/path/to/old/src python benchmarks/themes_order.py --name themes_order_before
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import save
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from themes_quality import load_set

import feedback_nlp
from feedback_nlp import Embedder
from feedback_nlp.themes import ThemeModel

SETS = ("banking77", "hwu64", "goemotions", "app_reviews", "sample")


def _compare(base: ThemeModel, other: ThemeModel, perm: np.ndarray) -> dict:
    """``other`` was fitted on the items of ``base`` in the order ``perm``."""
    a = base.labels_[perm]
    b = other.labels_
    titles_a = dict(zip(base.themes_["id"].tolist(), base.themes_["title"].tolist()))
    titles_b = dict(zip(other.themes_["id"].tolist(), other.themes_["title"].tolist()))
    return {"same_theme_id": round(float((a == b).mean()), 4),
            "partition_ari": round(float(adjusted_rand_score(a, b)), 4),
            "themes": [len(titles_a), len(titles_b)],
            "same_title_for_id": round(sum(titles_b.get(k) == t for k, t in titles_a.items()) / max(len(titles_a), 1), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--shuffles", type=int, default=3)
    ap.add_argument("--reembed", action="store_true")
    ap.add_argument("--name", default="themes_order")
    args = ap.parse_args()
    cached = Embedder(cache=True, backend="torch")  # the same fp32 vectors as themes_quality.py
    results: dict = {"library": feedback_nlp.__file__, "shuffles": args.shuffles, "sets": {}}
    for name in args.sets.split(","):
        texts, y = load_set(name)
        X = cached.encode(texts)
        t = time.perf_counter()
        base = ThemeModel().fit(texts, embeddings=X)
        seconds = time.perf_counter() - t
        res: dict = {"n": len(texts), "nmi": round(float(normalized_mutual_info_score(y, base.labels_)), 4),
                     "ari": round(float(adjusted_rand_score(y, base.labels_)), 4),
                     "outliers": round(float(base.outlier_share_), 4), "themes": len(base.themes_),
                     "seconds": round(seconds, 2), "shuffled": []}
        for seed in range(args.shuffles):
            perm = np.random.default_rng(seed).permutation(len(texts))
            other = ThemeModel().fit([texts[i] for i in perm], embeddings=X[perm])
            res["shuffled"].append(_compare(base, other, perm))
        if args.reembed:  # both orders embedded afresh (no cache), as two runs of a user's job would
            perm = np.random.default_rng(100).permutation(len(texts))
            shuffled = [texts[i] for i in perm]
            fresh = ThemeModel().fit(texts, embeddings=Embedder(backend="torch").encode(texts))
            other = ThemeModel().fit(shuffled, embeddings=Embedder(backend="torch").encode(shuffled))
            res["reembedded"] = _compare(fresh, other, perm)
        shuffled_ids = [s["same_theme_id"] for s in res["shuffled"]]
        res["same_theme_id_mean"] = round(float(np.mean(shuffled_ids)), 4) if shuffled_ids else None
        results["sets"][name] = res
        print(name, {k: v for k, v in res.items() if k != "shuffled"},
              "shuffles:", [(s["same_theme_id"], s["partition_ari"]) for s in res["shuffled"]], flush=True)
    print("wrote", save(args.name, results))


if __name__ == "__main__":
    sys.exit(main())
