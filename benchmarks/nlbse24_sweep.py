"""nlbse24 per-repository protocol: which fine-tuning recipe, calibration and ensemble, measured side by side.

Usage: python benchmarks/nlbse24_sweep.py [--configs c128,con128,...] [--seeds 0,1,2] [--device cuda]
       [--workers 6] [--raw DIR] [--name NAME]
       python benchmarks/nlbse24_sweep.py --summarise DIR [--name NAME]

One model per repository (300 training issues, ``train_with_repo.csv``), scored on that repository's 300 test
issues; each (config, seed, repository) writes the test probabilities to ``DIR/w*.jsonl``, so that seed
ensembles (the mean of the models' log-probabilities) are computed afterwards without training again.
Every config is ``TagClassifier(random_state=seed, **settings)`` with the settings in :data:`CONFIGS`;
``*st`` configs self-train on the *other half* of the repository's test issues (texts only, a seeded random
half), so no issue is scored by a model that read its text. The summary (``--summarise``, also run at the end)
gives per config and seed: macro-F1 per repository and their mean (the protocol's figure), the mean top
probability, the expected calibration error (10 bins) and training seconds; and the seed ensembles. Writes
``benchmarks/results/nlbse24_sweep-NAME.json``. Several workers share one GPU (``--device cuda``); on the CPU
use ``--workers 1``.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

_LORA = {"keep_base": True}
CONFIGS: dict[str, dict[str, Any]] = {
    "c128": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample"},
    "c256": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256},
    "c512": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 512},
    "c512e8": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 512,
               "finetune_epochs": 8},
    "c256e12": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256,
                "finetune_epochs": 12},
    "c256lr1e-3": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256,
                   "finetune_learning_rate": 1e-3},
    "c256lr4e-3": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256,
                   "finetune_learning_rate": 4e-3},
    "c256nobase": {"head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256},
    "c256st": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256,
               "self_train": True},
    "c128b12": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_batch_size": 12},
    "c128b16": {**_LORA, "head": "finetune", "finetune_calibration": "in_sample", "finetune_batch_size": 16},
    "con128": {**_LORA, "head": "contrastive", "finetune_calibration": "in_sample"},
    "con256": {**_LORA, "head": "contrastive", "finetune_calibration": "in_sample", "finetune_max_seq_length": 256},
    "con128nobase": {"head": "contrastive", "finetune_calibration": "in_sample"},
    "con128nolex": {**_LORA, "head": "contrastive", "finetune_calibration": "in_sample", "lexical": False},
    "con128e15": {**_LORA, "head": "contrastive", "finetune_calibration": "in_sample", "finetune_epochs": 15},
    "con128st": {**_LORA, "head": "contrastive", "finetune_calibration": "in_sample", "self_train": True},
    # the library's defaults since this round: held-out (cross-fitted) calibration
    "c128x": {**_LORA, "head": "finetune"},
    "con128x": {**_LORA, "head": "contrastive"},
}
REPOS = ["bitcoin/bitcoin", "facebook/react", "microsoft/vscode", "opencv/opencv", "tensorflow/tensorflow"]
HALF_SEED = 12345  # the split of a repository's test issues for the self-training configs


def _worker(tasks: list[tuple[str, str, int, str]], out: str, device: str, threads: int) -> None:
    import pandas as pd
    import torch
    from _common import data_dir

    from feedback_nlp import Embedder
    from feedback_nlp.tagging import TagClassifier

    torch.set_num_threads(threads)
    d = data_dir() / "nlbse24_issues"
    tr, te = pd.read_csv(d / "train_with_repo.csv"), pd.read_csv(d / "test_with_repo.csv")
    emb = Embedder(cache=None, backend="torch", device=device)
    with open(out, "a") as f:
        for repo, name, seed, half in tasks:
            t = time.perf_counter()
            try:
                a, b = tr[tr.repo == repo], te[te.repo == repo].reset_index(drop=True)
                perm = np.random.default_rng(HALF_SEED).permutation(len(b))
                halves = {"A": (np.sort(perm[: len(b) // 2]), np.sort(perm[len(b) // 2:]))}
                halves["B"] = halves["A"][::-1]
                clf = TagClassifier(emb, random_state=seed, **CONFIGS[name])
                if half:
                    scored, backlog = halves[half]
                    clf.fit(a["text"].tolist(), a["label"].tolist(), unlabelled=b["text"].iloc[backlog].tolist())
                else:
                    scored = np.arange(len(b))
                    clf.fit(a["text"].tolist(), a["label"].tolist())
                train_s = time.perf_counter() - t
                P = np.asarray(clf.predict_proba(b["text"].iloc[scored].tolist()), dtype=float)
                row = {"repo": repo, "config": name, "seed": seed, "half": half, "rows": scored.tolist(),
                       "classes": [str(c) for c in clf.classes_], "proba": np.round(P, 5).tolist(),
                       "labels": b["label"].iloc[scored].tolist(), "train_s": round(train_s, 1),
                       "temperature": float(clf.head_.temperature()), "calibration": clf.__dict__.get("calibration_"),
                       "fusion": None if clf.lexical_fusion_ is None else np.asarray(clf.lexical_fusion_).tolist()}
            except Exception:
                row = {"repo": repo, "config": name, "seed": seed, "half": half, "error": traceback.format_exc()[-3000:]}
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(repo, name, seed, half, row.get("train_s", "ERROR"), flush=True)


def expected_calibration_error(P: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their rows."""
    conf, right = P.max(axis=1), P.argmax(axis=1) == y
    total = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (conf > lo) & (conf <= lo + 1 / bins)
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(total)


def summarise(raw: Path) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    runs: dict[tuple[str, int, str], dict[str, Any]] = {}
    errors = []
    for path in sorted(glob.glob(str(raw / "*.jsonl"))):
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            if r["repo"] not in REPOS:
                continue
            if "error" in r:
                errors.append({k: r[k] for k in ("repo", "config", "seed", "half", "error")})
                continue
            key = (r["config"], int(r["seed"]), r["repo"])
            run = runs.setdefault(key, {"proba": np.full((300, 3), np.nan), "labels": np.empty(300, dtype=object),
                                        "classes": r["classes"], "train_s": 0.0})
            run["proba"][r["rows"]] = r["proba"]
            run["labels"][r["rows"]] = r["labels"]
            run["train_s"] += r["train_s"]  # the two halves of a self-training config: two models
    complete = {k: v for k, v in runs.items() if not np.isnan(v["proba"]).any()}

    def score(keys: list[tuple[str, int]]) -> dict[str, Any] | None:
        per_repo, conf, ece = {}, [], []
        for repo in REPOS:
            got = [complete.get((c, s, repo)) for c, s in keys]
            if any(g is None for g in got):
                return None
            classes = got[0]["classes"]  # type: ignore[index]
            logp = np.mean([np.log(np.clip(g["proba"], 1e-9, 1)) for g in got], axis=0)  # type: ignore[index]
            P = np.exp(logp - logp.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            y = np.array([classes.index(str(v)) for v in got[0]["labels"]])  # type: ignore[index]
            per_repo[repo] = round(float(f1_score(y, P.argmax(axis=1), average="macro")), 4)
            conf.append(P.max(axis=1).mean())
            ece.append(expected_calibration_error(P, y))
        return {"macro_f1": round(float(np.mean(list(per_repo.values()))), 4), "per_repo": per_repo,
                "mean_top_probability": round(float(np.mean(conf)), 3),
                "calibration_error": round(float(np.mean(ece)), 3)}

    rows = []
    for config, seed in sorted({(c, s) for c, s, _ in complete}):
        got = score([(config, seed)])
        if got is not None:
            secs = [complete[(config, seed, r)]["train_s"] for r in REPOS]
            rows.append({"config": config, "seed": seed, "settings": CONFIGS.get(config), **got,
                         "train_s_mean": round(float(np.mean(secs)), 1)})
    ensembles = []
    for config in sorted({r["config"] for r in rows}):
        seeds = sorted(r["seed"] for r in rows if r["config"] == config)
        if len(seeds) > 1:
            got = score([(config, s) for s in seeds])
            singles = [r["macro_f1"] for r in rows if r["config"] == config]
            ensembles.append({"configs": [config], "seeds": seeds, **(got or {}),
                              "mean_of_single_seeds": round(float(np.mean(singles)), 4)})
    return {"rows": rows, "seed_ensembles": ensembles, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="c128,con128,con128x")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads a worker (default: cores / workers)")
    ap.add_argument("--raw", default="", help="folder of the per-model probabilities (default: a results subfolder)")
    ap.add_argument("--summarise", default="", help="only summarise this folder of raw results")
    ap.add_argument("--note", default="", help="recorded in the JSON (where and how the raw results were made)")
    ap.add_argument("--name", default="cpu")
    args = ap.parse_args()
    from _common import save

    meta: dict[str, Any] = {"protocol": "one model per repository, 300 train / 300 test issues; macro-F1, mean of 5"}
    if args.note:
        meta["note"] = args.note
    if args.summarise:
        raw = Path(args.summarise)
        meta["raw"] = str(raw)
    else:
        raw = Path(args.raw or Path(__file__).resolve().parent / "results" / f"nlbse24_sweep-{args.name}-raw")
        raw.mkdir(parents=True, exist_ok=True)
        unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
        if unknown:
            raise SystemExit(f"unknown configs {unknown}; known: {sorted(CONFIGS)}")
        tasks = [(repo, c, int(s), half) for s in args.seeds.split(",") for c in args.configs.split(",")
                 for repo in REPOS for half in (("A", "B") if CONFIGS[c].get("self_train") else ("",))]
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(tasks[i::args.workers], str(raw / f"w{i}.jsonl"), args.device,
                                                   threads)) for i in range(args.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        meta["device"] = args.device
    summary = summarise(raw)
    for r in summary["rows"]:
        print(f"{r['config']:14s} seed {r['seed']}  macro-F1 {r['macro_f1']:.4f}  top p {r['mean_top_probability']:.3f}"
              f"  ECE {r['calibration_error']:.3f}  {r['train_s_mean']:.0f} s")
    for e in summary["seed_ensembles"]:
        print(f"{e['configs'][0]:14s} seeds {e['seeds']}  ensemble {e.get('macro_f1')}  (single seeds {e['mean_of_single_seeds']})")
    print(save(f"nlbse24_sweep-{args.name}", {**meta, **summary}))


if __name__ == "__main__":
    main()
