"""Few-shot tagging: banking77 with 8 labelled examples per intent, the same draws for every head.

Usage: python benchmarks/few_shot.py [--heads logreg,finetune,contrastive,self-train] [--draws 5] [--shots 8]
       [--vectors DIR] [--cache FILE] [--no-lexical] [--calibration crossfit|in_sample] [--device cpu]
A head is ``HEAD[+self-train][+names]``: ``+self-train`` adds the rest of the train split as an unlabelled
backlog (``TagClassifier(self_train=True).fit(X, y, unlabelled=backlog)``; ``self-train`` alone is
``logreg+self-train``); ``+names`` passes the label names as a taxonomy's tag names with
``taxonomy_examples=True`` (``card_arrival`` -> "card arrival"), one extra labelled row per intent;
``+base`` is ``keep_base=True`` (a fine-tuned head reads the frozen base model's vectors too).
``auto`` is ``head="auto"`` within ``--time-budget`` seconds (default 600; texts, so the fine-tuned heads are
candidates; the row keeps its ``head_selection``). ``--vectors DIR`` takes the frozen
embeddings of the splits from DIR/banking77_{train,test}.npy when there (frozen heads only; their texts go
along for the lexical channel, and with it a self-training backlog is passed as texts: ``--cache FILE`` keeps
its vectors between draws). ``--no-lexical`` trains ``TagClassifier(lexical=False)``.
Draw d takes ``shots`` examples per intent from the train split with ``random_state=d`` (as
benchmarks/tagging.py does); accuracy is on the full test split. Seconds include fine-tuning and embedding the
training texts, measured under load when other jobs share the 2 cores. Writes
benchmarks/results/few_shot.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, save

from feedback_nlp import Embedder, Taxonomy
from feedback_nlp.tagging import TagClassifier


def draw_examples(train: pd.DataFrame, shots: int, draw: int) -> pd.DataFrame:
    """Draw ``draw``: ``shots`` rows per label of ``train`` (benchmarks/setfit_peer.py uses the same draws)."""
    return train.groupby("label", group_keys=False).sample(shots, random_state=draw)


OPTIONS = ("self-train", "names", "base")


def parse_head(spec: str) -> tuple[str, set[str]]:
    """``"contrastive+self-train+names"`` -> ("contrastive", {"self-train", "names"}); ``"self-train"`` alone
    is the frozen head with self-training (as in earlier results)."""
    parts = spec.split("+")
    if parts[0] in OPTIONS:
        parts.insert(0, "logreg")
    head, options = parts[0], set(parts[1:])
    if head not in ("logreg", "finetune", "contrastive", "auto") or not options <= set(OPTIONS):
        raise SystemExit(f"unknown head {spec!r}: HEAD[+self-train][+names][+base], HEAD one of logreg, finetune, "
                         "contrastive, auto")
    return head, options


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", default="logreg,finetune,contrastive")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--first-draw", type=int, default=0)
    ap.add_argument("--shots", type=int, default=8)
    ap.add_argument("--vectors", default=None, help="folder with banking77_train.npy / banking77_test.npy")
    ap.add_argument("--cache", default=None, help="embedding cache file (sqlite): draws after the first reuse the "
                                                  "frozen vectors of the texts (the fine-tuned heads embed anew)")
    ap.add_argument("--no-lexical", action="store_true", help="TagClassifier(lexical=False): embeddings only")
    ap.add_argument("--time-budget", type=float, default=600.0, help="seconds of head=auto (its whole fit)")
    ap.add_argument("--calibration", choices=("crossfit", "in_sample"), default=None,
                    help="finetune_calibration of the fine-tuned heads (default: the library's, crossfit); the "
                         "results file name says which when given")
    ap.add_argument("--device", default="cpu", help="torch device of embedding and fine-tuning (accuracy checks "
                                                    "on a GPU; the time budget is the CPU's)")
    args = ap.parse_args()
    tr = pd.read_csv(data_dir() / "banking77" / "train.csv")
    te = pd.read_csv(data_dir() / "banking77" / "test.csv")
    emb = Embedder(cache=args.cache, backend="torch", device=args.device)
    frozen = {"train": tr["text"].tolist(), "test": te["text"].tolist()}
    if args.vectors:  # precomputed frozen embeddings, row-aligned with the splits
        for split in frozen:
            path = Path(args.vectors) / f"banking77_{split}.npy"
            if path.exists() and len(v := np.load(path)) == len(frozen[split]):
                frozen[split] = v
    rows: list[dict] = []
    name = (f"few_shot-{args.heads.replace(',', '-').replace('+', '_')}-{args.first_draw}-{args.draws}"
            + ("-nolex" if args.no_lexical else "") + (f"-{args.calibration}" if args.calibration else ""))
    labels = sorted(tr["label"].unique())
    # the team's tag names: the data set's label names, written as words ("card_arrival" -> "card arrival")
    names = Taxonomy.from_dict({"tags": [{"id": lab, "name": lab.replace("_", " ")} for lab in labels]})
    for spec in args.heads.split(","):
        head, options = parse_head(spec)
        for draw in range(args.first_draw, args.first_draw + args.draws):
            sub = draw_examples(tr, args.shots, draw)
            take = sub.index.to_numpy()
            rest = np.setdiff1d(np.arange(len(tr)), take)
            frozen_head = head == "logreg"
            X = frozen["train"] if frozen_head else tr["text"].tolist()
            pick = (lambda a, i: a[i]) if isinstance(X, np.ndarray) else (lambda a, i: [a[j] for j in i])
            t = time.perf_counter()
            clf = TagClassifier(emb, names if "names" in options else None, head=head, random_state=0,
                                self_train="self-train" in options, taxonomy_examples="names" in options,
                                time_budget=args.time_budget, lexical=not args.no_lexical,
                                keep_base="base" in options,
                                **({"finetune_calibration": args.calibration} if args.calibration else {}))
            vectors = isinstance(X, np.ndarray)  # --vectors: their texts go along for the lexical channel
            words = [tr["text"][i] for i in take] if vectors else None
            # a backlog of vectors cannot give the lexical channel its words: with the channel, pass its texts
            backlog = pick(X, rest) if not vectors or args.no_lexical else [tr["text"][i] for i in rest]
            clf.fit(pick(X, take), sub["label"].tolist(), texts=words,
                    unlabelled=backlog if "self-train" in options else None)
            test_x = frozen["test"] if frozen_head else te["text"].tolist()
            seconds = time.perf_counter() - t
            report = clf.evaluate(test_x, te["label"].tolist(), texts=te["text"].tolist() if vectors else None)
            figures = report.to_dict()  # held-out honesty of the probabilities beside the accuracy
            row = {"dataset": f"banking77 {args.shots}-shot", "head": spec, "draw": draw,
                   "accuracy": round(report.accuracy, 4),
                   **{k: None if figures.get(k) is None else round(figures[k], 4)
                      for k in ("mean_confidence", "calibration_error")},
                   "calibration": clf.__dict__.get("calibration_"),
                   "train_s": round(seconds, 1), "lexical": not args.no_lexical,
                   "lexical_kept": clf.__dict__.get("lexical_") is not None}
            if head == "auto":  # what it measured, chose and skipped, within the budget
                row["head_selection"] = clf.head_selection_
            print(row, flush=True)
            rows.append(row)
            save(name, {"rows": rows, "note": "partial: written after every draw"})  # a stopped run keeps its draws
    summary = (pd.DataFrame(rows).groupby("head", sort=False)
               .agg(accuracy=("accuracy", "mean"), std=("accuracy", "std"), draws=("draw", "count"),
                    train_s=("train_s", "mean")).reset_index())
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    save(name, {"rows": rows, "summary": summary.to_dict("records"), "device": args.device,
                "note": "train_s measured under load (2 shared cores)" if args.device == "cpu" else
                        f"accuracy measured on {args.device}; train_s there is not the CPU budget", "goal": "banking77 8-shot >= 0.87, mean of 5 draws"})


if __name__ == "__main__":
    main()
