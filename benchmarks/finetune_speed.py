"""Seconds of one contrastive LoRA fine-tuning epoch on 60 nlbse24 issues (128 tokens): MiniLM against another
encoder, back to back under the same load.

Usage: python benchmarks/finetune_speed.py --encoder DIR [--name NAME]

Tells how long the nlbse24 recipe would take with a larger encoder before running it (seventh round:
all-mpnet-base-v2 from ``benchmarks/get_mpnet.py``). Writes ``benchmarks/results/finetune_speed-NAME.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from _common import data_dir, save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--name", default="cpu")
    a = ap.parse_args()

    from feedback_nlp import Embedder
    from feedback_nlp.tagging import TagClassifier

    tr = pd.read_csv(data_dir() / "nlbse24_issues" / "train_with_repo.csv")
    rows = tr[tr.repo == "bitcoin/bitcoin"].groupby("label").head(20)
    seconds = {}
    for name, path in (("all-MiniLM-L6-v2", None), (Path(a.encoder).name, a.encoder)):
        emb = Embedder(path, backend="torch")
        emb.encode(["warm up"])  # the model load is not the training
        start = time.perf_counter()
        TagClassifier(emb, head="contrastive", finetune_epochs=1, finetune_calibration="in_sample", lexical=False,
                      cv=2, random_state=0).fit(rows.text.tolist(), rows.label.tolist())
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {seconds[name]} s")
    ratio = round(list(seconds.values())[1] / seconds["all-MiniLM-L6-v2"], 1)
    print(f"ratio {ratio}")
    save(f"finetune_speed-{a.name}", {"rows": len(rows), "max_seq_length": 128, "epochs": 1, "seconds": seconds,
                                      "ratio": ratio, "load": "measured while other jobs ran (load ~2-3)"})


if __name__ == "__main__":
    main()
