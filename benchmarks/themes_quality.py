"""Theme quality on real labelled data: ThemeModel beside BERTopic's default pipeline and k-means given the
true number of classes (an oracle), all on the same embeddings.

Data sets (test splits; the number of themes is never given to ThemeModel or BERTopic): banking77 (77
intents), hwu64 (64 intents), goemotions and app reviews (label sets as classes) and the bundled sample
(product area x request type). Metrics: NMI and ARI against the labels with outliers counted as one more
cluster, the outlier share, the number of themes, NMI on the assigned items, seconds (measured under
whatever load the machine had). Candidates of the method (reducer, clusterer, resolution) are measured on
banking77 and hwu64 with ``--candidates``. Readability of names: the share of themes whose title / keywords
contain a word of the dominant intent's name (banking77, hwu64), for our titles, our c-TF-IDF keywords
and BERTopic's c-TF-IDF names of the same clusters.

BERTopic runs from its own venv (``--bertopic-python venv-bertopic/bin/python``, see _bertopic_peer.py).
``--small`` adds small backlogs drawn from banking77 and hwu64 (K classes x s items, 5 draws each).

Usage: python benchmarks/themes_quality.py [--sets banking77,hwu64,...] [--candidates] [--small] [--bertopic-python PY]
       [--name RESULTS_FILE_NAME]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, save
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from feedback_nlp import Embedder
from feedback_nlp.datasets import load_sample
from feedback_nlp.themes import GraphClusterer, HDBSCANClusterer, PCAReducer, ThemeModel, UMAPReducer

SETS = ("banking77", "hwu64", "goemotions", "app_reviews", "sample")


def load_set(name: str) -> tuple[list[str], np.ndarray]:
    """Texts and class labels of one data set (a multi-label set's label string is its class)."""
    if name == "sample":
        s = load_sample()
        return s["text"].tolist(), (s["product_area"] + "/" + s["request_type"]).to_numpy()
    d = data_dir()
    if name == "app_reviews":
        df = pd.concat([pd.read_csv(d / "app_reviews_maalej" / f) for f in ("train.csv", "test.csv")], ignore_index=True)
    else:
        df = pd.read_csv(d / name / "test.csv")
    col = "label" if "label" in df.columns else "labels"
    return df["text"].astype(str).tolist(), df[col].astype(str).to_numpy()


def scores(y: np.ndarray, labels: np.ndarray, seconds: float) -> dict:
    a = labels >= 0
    return {"nmi": round(normalized_mutual_info_score(y, labels), 4), "ari": round(adjusted_rand_score(y, labels), 4),
            "outlier_share": round(float(1 - a.mean()), 4), "themes": int(len(set(labels[a].tolist()))),
            "nmi_assigned": round(normalized_mutual_info_score(y[a], labels[a]), 4) if a.any() else None,
            "seconds": round(seconds, 2)}


_WORD = re.compile(r"[a-z]+")


def _stems(text: str) -> set[str]:
    # a crude stem (first 5 letters) so "transfer"/"transfers" and "refund"/"refunded" meet
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) >= 3}


def readability(y: np.ndarray, labels: np.ndarray, names: dict[int, str]) -> float:
    """Share of themes whose name contains a word of the dominant class name (e.g. "card_arrival")."""
    hits = []
    for t, name in names.items():
        members = y[labels == t]
        if t < 0 or not len(members):
            continue
        dominant = pd.Series(members).value_counts().index[0]
        hits.append(bool(_stems(dominant.replace("_", " ")) & _stems(name)))
    return round(float(np.mean(hits)), 4) if hits else float("nan")


def candidates(X: np.ndarray, texts: list[str], y: np.ndarray) -> list[dict]:
    """The method's candidates on one data set: reducer x clusterer x resolution, and the outlier policy."""
    grid = {
        "PCA16 + HDBSCAN eom (old default)": dict(reducer=PCAReducer(), clusterer=HDBSCANClusterer(),
                                                    assign_threshold=0.6, max_outlier_share=0.15),
        "PCA16 + HDBSCAN leaf": dict(reducer=PCAReducer(), clusterer=HDBSCANClusterer(cluster_selection_method="leaf")),
        "PCA16 + HDBSCAN eom, min_samples 1": dict(reducer=PCAReducer(), clusterer=HDBSCANClusterer(min_samples=1)),
        "kNN graph Leiden res 1": dict(clusterer=GraphClusterer(resolution=1.0)),
        "kNN graph Leiden res 2": dict(clusterer=GraphClusterer(resolution=2.0)),
        "kNN graph Leiden res 4 (default)": {},
        "kNN graph Leiden res 8": dict(clusterer=GraphClusterer(resolution=8.0)),
        "kNN graph Leiden res 4, k=15": dict(clusterer=GraphClusterer(n_neighbors=15)),
        "default, outliers <= 15% (old policy)": dict(assign_threshold=0.6, max_outlier_share=0.15),
        "default, outliers <= 0% (assign all)": dict(max_outlier_share=0.0, min_assign_threshold=-1.0),
    }
    try:
        import umap  # noqa: F401

        grid["UMAP5 + HDBSCAN eom"] = dict(reducer=UMAPReducer(), clusterer=HDBSCANClusterer())
        grid["UMAP5 + HDBSCAN leaf"] = dict(reducer=UMAPReducer(), clusterer=HDBSCANClusterer(cluster_selection_method="leaf"))
    except ImportError:
        print("umap-learn not installed: UMAP candidates skipped", file=sys.stderr)
    rows = []
    for label, params in grid.items():
        t = time.perf_counter()
        tm = ThemeModel(**params).fit(texts, embeddings=X)
        rows.append({"candidate": label, **scores(y, tm.labels_, time.perf_counter() - t)})
        print(rows[-1], flush=True)
    return rows


SMALL = ((1, 35), (1, 60), (3, 15), (5, 12), (8, 25), (20, 20))


def small_backlogs(X: np.ndarray, y: np.ndarray, draws: int = 5) -> list[dict]:
    """Small backlogs drawn from one labelled set: K classes x s items each, ``draws`` draws per shape.

    The default ThemeModel (min_theme_size 10) is fitted on each; reported: the share of items in a theme,
    NMI (for K > 1) and the number of themes per draw. A backlog of one request (K = 1) should be one theme.
    """
    rng = np.random.default_rng(0)
    classes = np.unique(y)
    rows = []
    for k, s in SMALL:
        themed, nmis, counts = [], [], []
        for _ in range(draws):
            picked = rng.choice(classes, k, replace=False)
            idx = np.concatenate([rng.choice(np.flatnonzero(y == c), min(s, int((y == c).sum())), replace=False)
                                  for c in picked])
            labels = ThemeModel().fit(embeddings=X[idx]).labels_
            themed.append(float((labels >= 0).mean()))
            counts.append(int(len(set(labels[labels >= 0].tolist()))))
            if k > 1:
                nmis.append(normalized_mutual_info_score(y[idx], labels))
        rows.append({"classes": k, "items_per_class": s, "in_a_theme": round(float(np.mean(themed)), 3),
                     "nmi": round(float(np.mean(nmis)), 3) if nmis else None, "themes_per_draw": counts})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--candidates", action="store_true")
    ap.add_argument("--small", action="store_true", help="also small backlogs drawn from banking77 and hwu64")
    ap.add_argument("--bertopic-python", default=None, help="python of a venv with bertopic installed")
    ap.add_argument("--name", default="themes_quality", help="results file name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    emb = Embedder(cache=True, backend="torch")  # exact fp32 vectors: the same input for every tool
    results: dict = {"measured_under_load": True, "sets": {}, "candidates": {}}
    work = Path(tempfile.mkdtemp(prefix="themes_quality_"))
    for name in args.sets.split(","):
        texts, y = load_set(name)
        X = emb.encode(texts)
        res: dict = {"n": len(texts), "classes": int(len(set(y.tolist())))}
        t = time.perf_counter()
        tm = ThemeModel().fit(texts, embeddings=X)
        res["feedback_nlp ThemeModel"] = scores(y, tm.labels_, time.perf_counter() - t)
        t = time.perf_counter()
        km = KMeans(len(set(y.tolist())), n_init=3, random_state=0).fit_predict(X)
        res["k-means, true K (oracle)"] = scores(y, km, time.perf_counter() - t)
        np.save(work / f"{name}.npy", X)
        np.save(work / f"{name}.ours.npy", tm.labels_)
        (work / f"{name}.json").write_text(json.dumps(texts))
        titles = dict(zip(tm.themes_["id"], tm.themes_["title"]))
        keywords = dict(zip(tm.themes_["id"], tm.themes_["keywords"].map(lambda k: " ".join(k[:3]))))
        res["readability"] = {"our title": readability(y, tm.labels_, titles),
                              "our c-TF-IDF keywords (top 3)": readability(y, tm.labels_, keywords),
                              "our title + keywords": readability(y, tm.labels_, {t: titles[t] + " " + keywords[t] for t in titles})}
        res["examples"] = tm.themes_[["title", "keywords", "size"]].head(5).assign(
            keywords=lambda d: d["keywords"].map(lambda k: ", ".join(k[:3]))).to_dict("records")
        if args.small and name in ("banking77", "hwu64"):
            results.setdefault("small_backlogs", {})[name] = small_backlogs(X, y)
        if args.candidates and name in ("banking77", "hwu64"):
            results["candidates"][name] = candidates(X, texts, y)
        results["sets"][name] = res
        print(name, json.dumps({k: v for k, v in res.items() if k != "examples"}), flush=True)
    if args.bertopic_python:
        names = args.sets.split(",")
        out = subprocess.run([args.bertopic_python, str(Path(__file__).with_name("_bertopic_peer.py")), str(work), *names],
                             capture_output=True, text=True, check=True)
        peer = json.loads(out.stdout.strip().splitlines()[-1])
        for name in names:
            texts, y = load_set(name)
            labels = np.asarray(peer[name]["labels"])
            res = results["sets"][name]
            res["BERTopic default (UMAP + HDBSCAN, min_topic_size 10)"] = scores(y, labels, peer[name]["seconds"])
            ours = np.load(work / f"{name}.ours.npy")
            res["readability"]["BERTopic c-TF-IDF names, its clusters"] = readability(
                y, labels, {int(t): " ".join(w) for t, w in peer[name]["names"].items()})
            res["readability"]["BERTopic c-TF-IDF names, our clusters"] = readability(
                y, ours, {int(t): " ".join(w) for t, w in peer[name]["names_on_ours"].items()})
            print(name, "BERTopic", res["BERTopic default (UMAP + HDBSCAN, min_topic_size 10)"], flush=True)
    print(save(args.name, results))


if __name__ == "__main__":
    main()
