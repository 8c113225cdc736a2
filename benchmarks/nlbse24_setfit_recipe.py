"""SetFit's own nlbse24 recipe, reimplemented on plain PyTorch + transformers, with seed ensembles.

Usage: python benchmarks/nlbse24_setfit_recipe.py --model DIR [--seeds 0,1,2] [--iterations 20]
       [--max-length 384] [--device cuda] [--workers 3] [--deadline 420] [--raw DIR] [--name NAME]
       python benchmarks/nlbse24_setfit_recipe.py --summarise DIR [--name NAME] [--with GLOB ...]

The published nlbse24 baseline (``SOURCE.md``: overall macro-F1 0.827) is SetFit on all-mpnet-base-v2 with
``num_iterations=20`` and one epoch. SetFit's recipe, as its 0.x trainer runs it:

- pairs: ``iterations`` rounds; in each, every training issue gets one positive pair (a random issue of its own
  label) and one negative pair (a random issue of another label): 300 issues x 20 x 2 = 12,000 pairs;
- one epoch of ``CosineSimilarityLoss`` (squared error between the pair's cosine and 1 or 0) over them, batch 16,
  AdamW at 2e-5 with a linear warm-up over the first 10% of the steps, texts cut at the model's 384 tokens, mean
  pooling;
- a scikit-learn ``LogisticRegression`` on the normalised embeddings of the 300 training issues.

One model per repository and seed (the competition's protocol: 300 training issues, scored on the repository's
300 test issues). Each run writes the test probabilities to ``DIR/setfit-w*.jsonl``; ``--summarise`` gives
macro-F1 per repository and their mean per seed, the seed ensemble (mean of log-probabilities), and, with
``--with``, ensembles with other runs' raw files in ``nlbse24_sweep.py``'s format (e.g. MiniLM's). This is a
measurement script, not a library recipe: on this 2-core CPU one such mpnet run takes hours, far outside the
15-minute training budget, so it runs on a GPU (bf16 autocast). Writes ``benchmarks/results/nlbse24_setfit-NAME.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import multiprocessing as mp
import os
import random
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

REPOS = ["bitcoin/bitcoin", "facebook/react", "microsoft/vscode", "opencv/opencv", "tensorflow/tensorflow"]


def pairs_of(labels: list[str], iterations: int, rng: random.Random) -> list[tuple[int, int, float]]:
    """SetFit 0.x's ``sentence_pairs_generation``: per round and per row, one positive and one negative pair."""
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    out = []
    for _ in range(iterations):
        for i, y in enumerate(labels):
            out.append((i, rng.choice(by_label[y]), 1.0))
            other = [j for j, z in enumerate(labels) if z != y]
            out.append((i, rng.choice(other), 0.0))
    rng.shuffle(out)
    return out


def _run(repo: str, seed: int, args: argparse.Namespace, tr: Any, te: Any) -> dict[str, Any]:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from transformers import AutoModel, AutoTokenizer

    t0 = time.perf_counter()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    a, b = tr[tr.repo == repo].reset_index(drop=True), te[te.repo == repo].reset_index(drop=True)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model).float().to(args.device)
    dev = torch.device(args.device)
    use_bf16 = dev.type == "cuda"

    def batch_of(texts: list[str]) -> dict[str, Any]:
        enc = tok(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
        return {k: v.to(dev) for k, v in enc.items()}

    def pooled(enc: dict[str, Any]) -> Any:
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).float()

    texts, labels = a["text"].tolist(), a["label"].tolist()
    pairs = pairs_of(labels, args.iterations, random.Random(seed))
    steps = math.ceil(len(pairs) / args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    warm = math.ceil(steps * 0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
    model.train()
    for s in range(steps):
        chunk = pairs[s * args.batch_size:(s + 1) * args.batch_size]
        u = pooled(batch_of([texts[i] for i, _, _ in chunk]))
        v = pooled(batch_of([texts[j] for _, j, _ in chunk]))
        target = torch.tensor([t for _, _, t in chunk], device=dev)
        loss = torch.nn.functional.mse_loss(torch.nn.functional.cosine_similarity(u, v), target)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()

    def encode(xs: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(xs), 64):
                out.append(torch.nn.functional.normalize(pooled(batch_of(xs[i:i + 64])), dim=1).cpu().numpy())
        return np.concatenate(out)

    head = LogisticRegression(max_iter=1000).fit(encode(texts), labels)
    P = head.predict_proba(encode(b["text"].tolist()))
    pred = head.classes_[P.argmax(1)]
    return {"repo": repo, "config": f"setfit{args.iterations}L{args.max_length}", "seed": seed, "half": "",
            "rows": list(range(len(b))), "classes": [str(c) for c in head.classes_],
            "proba": np.round(P, 5).tolist(), "labels": b["label"].tolist(),
            "macro_f1": round(float(f1_score(b["label"], pred, average="macro")), 4),
            "train_s": round(time.perf_counter() - t0, 1), "pairs": len(pairs), "steps": steps}


def _worker(tasks: list[tuple[str, int]], args: argparse.Namespace, out: str, start: float) -> None:
    import pandas as pd
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // max(1, args.workers)))
    d = Path(args.data)
    tr, te = pd.read_csv(d / "train_with_repo.csv"), pd.read_csv(d / "test_with_repo.csv")
    last = 0.0
    with open(out, "a") as f:
        for repo, seed in tasks:
            if time.time() - start + last > args.deadline:
                print("deadline: skipping", repo, seed, flush=True)
                continue
            t = time.time()
            try:
                row = _run(repo, seed, args, tr, te)
            except Exception:
                row = {"repo": repo, "seed": seed, "error": traceback.format_exc()[-3000:]}
            last = time.time() - t
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(repo, seed, row.get("macro_f1", "ERROR"), row.get("train_s"), flush=True)


def _f1(P: np.ndarray, classes: list[str], labels: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, np.asarray(classes)[P.argmax(1)], average="macro"))


def _load(paths: list[str]) -> dict[tuple[str, int, str], dict[str, Any]]:
    runs: dict[tuple[str, int, str], dict[str, Any]] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            if "error" in r or r.get("half") or r["repo"] not in REPOS:
                continue
            order = np.argsort(r["classes"])  # one class order for every source
            runs[(r["config"], int(r["seed"]), r["repo"])] = {
                "proba": np.asarray(r["proba"], dtype=float)[:, order], "classes": sorted(r["classes"]),
                "labels": np.asarray(r["labels"], dtype=object), "train_s": r.get("train_s")}
    return runs


def _ensemble(runs: dict[tuple[str, int, str], dict[str, Any]], members: list[tuple[str, int]]) -> dict[str, Any] | None:
    per_repo = {}
    for repo in REPOS:
        got = [runs.get((c, s, repo)) for c, s in members]
        if any(g is None for g in got):
            return None
        logp = np.mean([np.log(np.clip(g["proba"], 1e-9, 1)) for g in got], axis=0)  # type: ignore[index]
        per_repo[repo] = round(_f1(logp, got[0]["classes"], got[0]["labels"]), 4)  # type: ignore[index]
    return {"members": [f"{c}/{s}" for c, s in members], "macro_f1": round(float(np.mean(list(per_repo.values()))), 4),
            "per_repo": per_repo}


def summarise(raw: Path, name: str, others: list[str]) -> dict[str, Any]:
    mine = _load(sorted(glob.glob(str(raw / "setfit-w*.jsonl"))))
    theirs = _load(sorted(p for g in others for p in glob.glob(g)))
    configs = sorted({(c, s) for c, s, _ in mine})
    singles = [e | {"train_s_mean": round(float(np.mean([mine[(c, s, r)]["train_s"] for r in REPOS])), 1)}
               for c, s in configs if (e := _ensemble(mine, [(c, s)]))]
    result: dict[str, Any] = {
        "protocol": "one model per repository, 300 train / 300 test issues; macro-F1, mean of 5",
        "recipe": "SetFit 0.x: 20 rounds of one positive + one negative pair per issue (12,000 pairs), 1 epoch of "
                  "CosineSimilarityLoss, batch 16, AdamW 2e-5, 10% linear warm-up, 384 tokens, mean pooling, "
                  "LogisticRegression on normalised embeddings; bf16 autocast on the GPU",
        "published": {"setfit_mpnet_readme": 0.827, "setfit_mpnet_results_json": 0.824},
        "singles": singles, "ensembles": [], "raw": str(raw)}
    complete = [(c, s) for c, s in configs if all((c, s, r) in mine for r in REPOS)]
    if len(complete) > 1:
        result["ensembles"].append(_ensemble(mine, complete))
    if theirs and complete:
        other_cfgs = sorted({(c, s) for c, s, _ in theirs if all((c, s, r) in theirs for r in REPOS)})
        both = {**mine, **theirs}
        by_cfg: dict[str, list[tuple[str, int]]] = {}
        for c, s in other_cfgs:
            by_cfg.setdefault(c, []).append((c, s))
        for _cfg, members in sorted(by_cfg.items()):
            e = _ensemble(both, complete + members)
            if e:
                result["ensembles"].append(e)
    out = Path(__file__).parent / "results" / f"nlbse24_setfit-{name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("singles", "ensembles")}, indent=1))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--data", default=os.environ.get("FEEDBACK_NLP_DATA", "../shared/datasets") + "/nlbse24_issues")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--repos", default=",".join(REPOS))
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--deadline", type=float, default=1e9, help="start no run that would end after this many seconds")
    ap.add_argument("--raw", default="benchmarks/results/nlbse24_setfit-raw")
    ap.add_argument("--name", default="run")
    ap.add_argument("--summarise")
    ap.add_argument("--with", dest="others", action="append", default=[])
    args = ap.parse_args()
    if args.summarise:
        summarise(Path(args.summarise), args.name, args.others)
        return
    raw = Path(args.raw)
    raw.mkdir(parents=True, exist_ok=True)
    tasks = [(r, int(s)) for s in args.seeds.split(",") for r in args.repos.split(",")]
    start = time.time()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(tasks[w::args.workers], args, str(raw / f"setfit-w{w}.jsonl"), start))
             for w in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    summarise(raw, args.name, args.others)


if __name__ == "__main__":
    main()
