"""LoRA adapter vs full fine-tuning: accuracy, training seconds and saved size, on the same data and seeds.

Usage: python benchmarks/adapters.py [--runs banking77-8shot,banking77-full,nlbse24-repo] [--modes lora,full,lora+base]
       [--draws 2] [--lora-lr 1e-3] [--device cpu] [--calibration crossfit|in_sample] [--probabilities] [--name NAME]
- ``banking77-8shot``: draw d takes 8 examples per intent from the train split with ``random_state=d`` (the
  draws of benchmarks/few_shot.py); accuracy on the full test split.
- ``banking77-full``: the whole train split (10,003 rows), accuracy on the test split.
- ``nlbse24-repo``: one model per repository (300 GitHub issues each; ``train_with_repo.csv``), macro-F1 on
  that repository's test issues, mean of the 5 (the protocol of benchmarks/tagging.py; SetFit's published
  figure 0.827).
Both modes are ``TagClassifier(head="finetune", random_state=0)`` with default settings (``--head contrastive``
and ``--seed N`` change them, ``--calibration in_sample`` skips the two calibration encoders; since this round the default ``finetune_calibration="crossfit"`` fine-tunes two more
encoders on halves of the rows for the calibration, which the seconds include); ``full`` passes
``adapter=None``; ``lora+base`` / ``full+base`` add ``keep_base=True`` (the head also reads the frozen base
model's vectors). Every model is saved, its folder measured, loaded back and checked to give the same
predictions. ``--lora-lr`` takes a comma list to compare learning rates. Seconds are wall-clock training
(fine-tuning + embedding the training texts + the calibrated head); the JSON records the device and the load
average, since timings on the shared 2-core machine are taken under load. The encoder is the library's default
(``FEEDBACK_NLP_MODEL`` picks another, e.g. all-mpnet-base-v2 from benchmarks/get_mpnet.py; the JSON records it).
Writes benchmarks/results/adapters-NAME.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder
from feedback_nlp._adapters import LORA_LEARNING_RATE
from feedback_nlp.tagging import TagClassifier
from feedback_nlp.training import FULL_LEARNING_RATE


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run(name: str, mode: str, lr: float | None, train: pd.DataFrame, test: pd.DataFrame, emb: Embedder,
        metric: str, head: str = "finetune", seed: int = 0, calibration: str = "crossfit",
        keep_proba: bool = False) -> dict:
    t = time.perf_counter()
    clf = TagClassifier(emb, head=head, adapter="lora" if mode.startswith("lora") else None,
                        keep_base=mode.endswith("+base"), finetune_learning_rate=lr,
                        finetune_calibration=calibration, random_state=seed).fit(train["text"].tolist(), train["label"].tolist())
    train_s = time.perf_counter() - t
    report = clf.evaluate(test["text"].tolist(), test["label"].tolist())
    # the test probabilities, for ensembles of models trained apart (one more pass over the test texts)
    proba = {"classes": [str(c) for c in clf.classes_],
             "test_proba": np.round(clf.predict_proba(test["text"].tolist()).to_numpy(), 5).tolist()} if keep_proba else {}
    with tempfile.TemporaryDirectory(prefix="adapters_bench_") as tmp:
        folder = clf.save(Path(tmp) / "model")
        size = folder_bytes(folder)
        t = time.perf_counter()
        loaded = TagClassifier.load(folder, embedder=emb if mode.startswith("lora") else None)
        load_s = time.perf_counter() - t
        probe = test["text"].tolist()[:64]
        same = bool(np.array_equal(loaded.predict(probe), clf.predict(probe)))
        del loaded
    row = {"run": name, "head": head, "seed": seed, "calibration": calibration, "mode": mode, "learning_rate": f"{lr if lr is not None else (LORA_LEARNING_RATE if mode.startswith('lora') else FULL_LEARNING_RATE):g}",
           "n_train": len(train), "accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4),
           "metric": metric, "train_s": round(train_s, 1), "saved_bytes": size, "load_s": round(load_s, 2),
           "reload_same_predictions": same, "load_average": round(os.getloadavg()[0], 2)}
    print(row, flush=True)
    row.update(proba)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="banking77-8shot,banking77-full,nlbse24-repo")
    ap.add_argument("--modes", default="lora,full")
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--lora-lr", default="", help="comma list of LoRA learning rates (default: the library's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repos", default="", help="comma list: only these nlbse24 repositories (owner/name)")
    ap.add_argument("--first-draw", type=int, default=0)
    ap.add_argument("--head", default="finetune", choices=["finetune", "contrastive"])
    ap.add_argument("--seed", type=int, default=0, help="random_state of every model")
    ap.add_argument("--calibration", default="crossfit", choices=["crossfit", "in_sample"],
                    help="finetune_calibration of every model")
    ap.add_argument("--probabilities", action="store_true",
                    help="nlbse24: also record each model's test probabilities (rows in the test file's order)")
    ap.add_argument("--name", default="cpu")
    args = ap.parse_args()
    d = data_dir()
    # --probabilities scores the test texts twice (evaluate, then predict_proba): a fresh cache makes the second
    # pass a lookup; the training texts are embedded once either way, so train_s is not helped by it
    scratch = tempfile.mkdtemp(prefix="adapters_cache_") if args.probabilities else None
    emb = Embedder(cache=f"{scratch}/cache.sqlite" if scratch else None, backend="torch", device=args.device)
    lrs = [float(x) for x in args.lora_lr.split(",") if x] or [None]
    configs = [(m, lr) for m in args.modes.split(",") for lr in (lrs if m.startswith("lora") else [None])]
    rows: list[dict] = []
    device = args.device
    if device != "cpu":
        import torch

        device = f"{args.device} ({torch.cuda.get_device_name(0)})"
    meta = {"device": device, "encoder": emb.model_id, "torch_threads": __import__("torch").get_num_threads(),
            "note": "train_s on the shared 2-core CPU is measured under load (see load_average per row)"
            if args.device == "cpu" else "train_s on a GPU: not comparable with the CPU budget"}

    def record(row: dict) -> None:
        rows.append(row)
        save(f"adapters-{args.name}", {**meta, "rows": rows, "note_partial": "written after every run"})

    runs = args.runs.split(",")
    if "banking77-8shot" in runs or "banking77-full" in runs:
        tr, te = pd.read_csv(d / "banking77/train.csv"), pd.read_csv(d / "banking77/test.csv")
        if "banking77-8shot" in runs:
            for draw in range(args.first_draw, args.first_draw + args.draws):
                sub = tr.groupby("label", group_keys=False).sample(8, random_state=draw)
                for mode, lr in configs:
                    record({**run("banking77 8-shot", mode, lr, sub, te, emb, "accuracy", args.head, args.seed,
                                        args.calibration), "draw": draw})
        if "banking77-full" in runs:
            for mode, lr in configs:
                record(run("banking77 full", mode, lr, tr, te, emb, "accuracy", args.head, args.seed,
                           args.calibration))
    if "nlbse24-repo" in runs:
        tr = pd.read_csv(d / "nlbse24_issues/train_with_repo.csv")
        te = pd.read_csv(d / "nlbse24_issues/test_with_repo.csv")
        for mode, lr in configs:
            for repo in [r for r in sorted(tr.repo.unique()) if not args.repos or r in args.repos.split(",")]:
                row = run(f"nlbse24 {repo}", mode, lr, tr[tr.repo == repo], te[te.repo == repo], emb, "macro_f1",
                      args.head, args.seed, args.calibration, args.probabilities)
                record({**row, "repo": repo})
    if not rows:
        raise SystemExit(f"nothing ran: --runs {args.runs!r} / --repos {args.repos!r} matched no run "
                         "(nlbse24 repositories are named owner/name, e.g. facebook/react)")
    df = pd.DataFrame(rows)
    df["dataset"] = df["run"].where(~df["run"].str.startswith("nlbse24 "), "nlbse24 per-repo")
    summary = (df.groupby(["dataset", "head", "calibration", "mode", "learning_rate"], sort=False)
               .agg(accuracy=("accuracy", "mean"), macro_f1=("macro_f1", "mean"), runs=("run", "count"),
                    train_s=("train_s", "mean"), saved_mb=("saved_bytes", lambda b: b.mean() / 1e6))
               .reset_index())
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    save(f"adapters-{args.name}", {**meta, "rows": rows, "summary": summary.to_dict("records")})


if __name__ == "__main__":
    main()
