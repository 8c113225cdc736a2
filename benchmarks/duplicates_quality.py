"""Duplicate search quality on real duplicate sets: Deduper beside plain cosine top-k and BM25.

- bugdup_hadoop (groups.csv: 2,503 Jira reports, 129 in 63 triager-marked duplicate groups): every report
  of a group queries the whole pool (itself excluded by id); recall@k = share of queries with a group-mate
  in the top k.
- mrpc (test): each paraphrase pair's first sentence queries all second sentences (retrieval recall@k),
  and paraphrase F1 on test at the cosine threshold calibrated on train (calibrate_threshold).
- the bundled sample's 40 planted groups, same protocol as bugdup. Caveat: each planted group rewords
  one of ~100 core requests that ~30 other items of the sample repeat, so a "miss" there is often another
  copy of the same request; the figure is reported, not tuned on.
- banking77 and hwu64 test, same intent counted as duplicate (every item queries the rest): a held-out
  check on short utterances, where lexical evidence is weak, that nothing was fitted to the sets above.

The lexical bonus of ``Deduper.find`` (``lexical_weight``, ``lexical_scale``, ``lexical_max_df``) was chosen
on training splits only: bugdup_hadoop's train groups (the groups of train.csv's duplicate pairs) and mrpc
train; ``--grid`` re-measures that choice. Rows for bugdup's train and test groups are reported apart.

Rows: plain cosine over fp32 and over int8 vectors (numpy, the ten-line baseline), BM25 alone, and
Deduper.find (exact index, HNSW index, with and without the lexical ranking, fp32 and int8 vectors).
``auto`` resolves to int8 (torch-int8) on this CPU, so "Deduper defaults" are int8 vectors + hybrid.
Usage: python benchmarks/duplicates_quality.py [--grid]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder
from feedback_nlp.datasets import load_sample
from feedback_nlp.dedupe import BM25, Deduper, calibrate_threshold

KS = (1, 5, 10)


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def recall_from_order(order: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    return {f"recall@{k}": round(float(np.mean([bool(rel & set(order[i, :k].tolist()))
                                                 for i, rel in enumerate(relevant)])), 4) for k in KS}


def plain_cosine(Q: np.ndarray, C: np.ndarray, self_pos: np.ndarray | None) -> np.ndarray:
    S = _unit(Q) @ _unit(C).T
    if self_pos is not None:
        S[np.arange(len(Q)), self_pos] = -np.inf
    return np.argsort(-S, axis=1, kind="stable")[:, :max(KS)]


def plain_bm25(qt: list[str], ct: list[str], self_pos: np.ndarray | None) -> np.ndarray:
    S = BM25().fit(ct).scores(qt)
    if self_pos is not None:
        S[np.arange(len(qt)), self_pos] = -np.inf
    return np.argsort(-S, axis=1, kind="stable")[:, :max(KS)]


def reciprocal_rank_fusion(qt, ct, Q, C, self_pos, weight: float = 1.0, k: int = 60, c: int = 100) -> np.ndarray:
    """The previous default of ``find``: 1/(k + vector rank) + weight/(k + BM25 rank) over the top c of each."""
    V = _unit(Q) @ _unit(C).T
    L = BM25().fit(ct).scores(qt)
    if self_pos is not None:
        V[np.arange(len(Q)), self_pos] = -np.inf
        L[np.arange(len(Q)), self_pos] = -np.inf
    out = np.full((len(Q), max(KS)), -1)
    for i in range(len(Q)):
        fused: dict[int, float] = {}
        for rank, p in enumerate(np.argsort(-V[i], kind="stable")[:c].tolist()):
            fused[p] = 1.0 / (k + rank + 1)
        for rank, p in enumerate([p for p in np.argsort(-L[i], kind="stable")[:c].tolist() if L[i, p] > 0]):
            fused[p] = fused.get(p, 0.0) + weight / (k + rank + 1)
        cand = np.fromiter(fused, dtype=np.int64)
        f = np.fromiter(fused.values(), dtype=np.float64)
        out[i] = cand[np.lexsort((cand, -V[i, cand], -f))[:max(KS)]]
    return out


def deduper_order(d: Deduper, qt: list[str] | None, Q: np.ndarray, exclude: list | None) -> np.ndarray:
    res = d.find(qt, k=max(KS), embeddings=Q, exclude_ids=exclude)
    order = np.full((len(Q), max(KS)), -1)
    for (qi, rank), pos in zip(zip(res["query"], res["rank"]), res["id"]):
        order[qi, rank - 1] = pos
    return order


def retrieval_set(name: str, qt, ct, relevant, self_pos, vecs: dict, splits: dict | None = None) -> list[dict]:
    """All rows for one retrieval set; ``vecs[backend] = (Q, C)``; ``splits[label] = query mask`` adds rows
    of the default ranking for subsets of the queries (bugdup's train and test groups)."""
    rows = []
    exclude = None if self_pos is None else self_pos.tolist()

    def add(tool: str, fn, subsets: bool = False) -> None:
        t = time.perf_counter()
        order = fn()
        seconds = round(time.perf_counter() - t, 2)
        rows.append({"set": name, "tool": tool, **recall_from_order(order, relevant), "seconds": seconds})
        print(rows[-1], flush=True)
        for label, mask in (splits or {}).items() if subsets else ():
            sub = np.flatnonzero(mask)
            rows.append({"set": f"{name}, {label}", "tool": tool,
                         **recall_from_order(order[sub], [relevant[i] for i in sub]), "seconds": None})

    for backend, (Q, C) in vecs.items():
        add(f"plain cosine top-k ({backend})", lambda Q=Q, C=C: plain_cosine(Q, C, self_pos), subsets=backend == "fp32")
    add("BM25 alone", lambda: plain_bm25(qt, ct, self_pos))
    Q, C = vecs["fp32"]
    add("reciprocal-rank fusion, equal weights, k=60 (previous default, fp32)",
        lambda: reciprocal_rank_fusion(qt, ct, Q, C, self_pos), subsets=True)
    ids = list(range(len(ct)))
    for backend, (Q, C) in vecs.items():
        for label, params in [("vector only, exact", dict(lexical_weight=0.0, index="exact")),
                              ("vector only, HNSW", dict(lexical_weight=0.0, index="hnsw")),
                              ("hybrid (default), exact", {}), ("hybrid, HNSW", dict(index="hnsw"))]:
            d = Deduper(**params).fit(ct, ids=ids, embeddings=C)
            add(f"Deduper.find {label} ({backend})", lambda d=d, Q=Q: deduper_order(d, qt, Q, exclude),
                subsets=label.startswith("hybrid (default)"))
    return rows


GRID = [dict(lexical_weight=w, lexical_scale=s, lexical_max_df=m)
        for w in (0.1, 0.2, 0.3) for s in (10.0, 20.0) for m in (0.01, 0.0)]  # max_df 0: at most 5 items


def grid(emb: Embedder) -> list[dict]:
    """The lexical bonus's parameters measured on the training splits only (bugdup train groups, mrpc train)."""
    d = data_dir()
    g = pd.read_csv(d / "bugdup_hadoop" / "groups.csv")
    tr = pd.read_csv(d / "bugdup_hadoop" / "train.csv")
    pos = tr[tr["is_duplicate"] == 1]
    train_groups = set(g.loc[g["text"].isin(set(pos["text_a"]) | set(pos["text_b"])), "group_id"])
    groups = g["group_id"].to_numpy()
    sizes = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy()
    q = np.flatnonzero((sizes >= 2) & np.isin(groups, list(train_groups)))
    texts = g["text"].tolist()
    X = emb.encode(texts)
    bug = ([texts[i] for i in q], texts, [set(np.flatnonzero(groups == groups[i]).tolist()) - {i} for i in q], X[q], X, q.tolist())
    m = pd.read_csv(d / "mrpc_paraphrase" / "train.csv")
    mp = m[m["is_duplicate"] == 1]
    corpus = list(dict.fromkeys(m["text_b"]))
    where = {t: i for i, t in enumerate(corpus)}
    mrpc = (mp["text_a"].tolist(), corpus, [{where[b]} for b in mp["text_b"]], emb.encode(mp["text_a"].tolist()),
            emb.encode(corpus), None)
    rows = []
    for params in [dict(lexical_weight=0.0), *GRID]:
        row: dict = dict(params)
        for name, (qt, ct, rel, Q, C, exclude) in [("bugdup train groups", bug), ("mrpc train", mrpc)]:
            dd = Deduper(**params).fit(ct, ids=list(range(len(ct))), embeddings=C)
            row.update({f"{name} {k}": v for k, v in recall_from_order(deduper_order(dd, qt, Q, exclude), rel).items()})
        row["mean"] = round(float(np.mean([v for k, v in row.items() if "recall" in k])), 4)
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", action="store_true", help="also re-measure the lexical bonus grid on the train splits")
    args = ap.parse_args()
    d = data_dir()
    backends = {"fp32": Embedder(cache=True, backend="torch"), "int8": Embedder(cache=True, backend="torch-int8")}
    rows: list[dict] = []
    # --- bugdup_hadoop and the sample: every member of a group queries the pool
    g = pd.read_csv(d / "bugdup_hadoop" / "groups.csv")
    s = load_sample()
    s_groups = np.where(s["dup_group"] != "", s["dup_group"], s["id"])
    for name, texts, groups in [("bugdup_hadoop", g["text"].tolist(), g["group_id"].to_numpy()),
                                ("sample (planted groups)", s["text"].tolist(), s_groups)]:
        sizes = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy()
        q = np.flatnonzero(sizes >= 2)
        relevant = [set(np.flatnonzero(groups == groups[i]).tolist()) - {i} for i in q]
        vecs = {b: (e.encode([texts[i] for i in q]), e.encode(texts)) for b, e in backends.items()}
        splits = None
        if name == "bugdup_hadoop":  # groups of the train / test pairs: the bonus was chosen on train only
            splits = {}
            for split in ("train", "test"):
                p = pd.read_csv(d / "bugdup_hadoop" / f"{split}.csv")
                p = p[p["is_duplicate"] == 1]
                chosen = set(g.loc[g["text"].isin(set(p["text_a"]) | set(p["text_b"])), "group_id"])
                splits[f"{split} groups"] = np.isin(groups[q], list(chosen))
        rows += retrieval_set(name, [texts[i] for i in q], texts, relevant, q, vecs, splits)
    for name in ("banking77", "hwu64"):  # same intent as duplicate: a held-out check on short utterances
        t = pd.read_csv(d / name / "test.csv")
        texts, labels = t["text"].tolist(), t["label"].to_numpy()
        q = np.arange(len(texts))
        relevant = [set(np.flatnonzero(labels == labels[i]).tolist()) - {i} for i in q]
        vecs = {b: (e.encode(texts), e.encode(texts)) for b, e in backends.items()}
        rows += retrieval_set(f"{name} test (same intent)", texts, texts, relevant, q, vecs)
    # --- mrpc: retrieval of the paired sentence, and F1 at a threshold calibrated on train
    tr = pd.read_csv(d / "mrpc_paraphrase" / "train.csv")
    te = pd.read_csv(d / "mrpc_paraphrase" / "test.csv")
    pos = te[te["is_duplicate"] == 1] if "is_duplicate" in te.columns else te[te.iloc[:, -1] == 1]
    label_col = "is_duplicate" if "is_duplicate" in te.columns else te.columns[-1]
    corpus = list(dict.fromkeys(te["text_b"]))
    where = {t: i for i, t in enumerate(corpus)}
    relevant = [{where[b]} for b in pos["text_b"]]
    vecs = {b: (e.encode(pos["text_a"].tolist()), e.encode(corpus)) for b, e in backends.items()}
    rows += retrieval_set("mrpc (test positives)", pos["text_a"].tolist(), corpus, relevant, None, vecs)
    f1_rows = []
    for backend, e in backends.items():
        dd = Deduper(e)
        thr = calibrate_threshold(dd.score_pairs(tr["text_a"].tolist(), tr["text_b"].tolist()), tr[label_col])
        pred = dd.score_pairs(te["text_a"].tolist(), te["text_b"].tolist()) >= thr
        y = te[label_col].to_numpy() == 1
        tp = int((pred & y).sum())
        f1_rows.append({"set": "mrpc", "vectors": backend, "threshold (train)": round(thr, 4),
                        "f1": round(2 * tp / (pred.sum() + y.sum()), 4), "precision": round(tp / max(pred.sum(), 1), 4),
                        "recall": round(tp / y.sum(), 4), "accuracy": round(float((pred == y).mean()), 4)})
        print(f1_rows[-1], flush=True)
    grid_rows = grid(backends["fp32"]) if args.grid else None
    print(pd.DataFrame(rows).to_markdown(index=False))
    if grid_rows:
        print(pd.DataFrame(grid_rows).to_markdown(index=False))
    print(save("duplicates_quality", {"measured_under_load": True, "retrieval": rows, "mrpc_f1": f1_rows,
                                      "lexical_grid_train_splits": grid_rows}))


if __name__ == "__main__":
    main()
