"""The bundled ``request-type`` task with a frozen head, embeddings alone vs with the lexical channel: the rows,
taxonomy and test splits of ``models/train_request_type.py`` (nlbse24 GitHub issues + single-label app reviews).

Usage: python benchmarks/request_type_heads.py [--cache FILE]
The texts are embedded once (cached in FILE, default an SQLite cache under the system temp folder); both models
are fitted on those vectors with their texts, so they differ only in the words. Accuracy and macro-F1 per source
and overall; seconds are embedding and training wall-clock (under load when other jobs share the 2 cores).
The shipped model (LoRA, 3 epochs) took 4,030 s to rebuild; this is the comparison for the 15-minute budget.
Writes benchmarks/results/request_type_heads.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from train_request_type import TAXONOMY, load  # noqa: E402

from feedback_nlp import Embedder  # noqa: E402
from feedback_nlp.tagging import TagClassifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "feedback_nlp_request_type.sqlite"))
    args = ap.parse_args()
    train, test = load("train"), load("test")
    emb = Embedder(cache=args.cache)
    t = time.perf_counter()
    xa, xb = emb.encode(train["text"].tolist()), emb.encode(test["text"].tolist())
    embed_s = time.perf_counter() - t
    rows = []
    for lexical in (False, True):
        t = time.perf_counter()
        clf = TagClassifier(emb, TAXONOMY, random_state=0, lexical=lexical).fit(
            xa, train["label"].tolist(), texts=train["text"].tolist())
        row = {"lexical": lexical, "kept": clf.lexical_ is not None, "train_s": round(time.perf_counter() - t, 1),
               "embed_s": round(embed_s, 1)}
        for name, part in [*test.groupby("set"), ("all", test)]:
            r = clf.evaluate(xb[part.index.to_numpy()], part["label"].tolist(), texts=part["text"].tolist())
            row[f"{name} accuracy"], row[f"{name} macro_f1"] = round(r.accuracy, 4), round(r.macro_f1, 4)
        print(row, flush=True)
        rows.append(row)
    save("request_type_heads", {"rows": rows, "load_average_end": round(os.getloadavg()[0], 1),
                                "note": "frozen all-MiniLM-L6-v2 head; seconds under load (2 shared cores)"})


if __name__ == "__main__":
    main()
