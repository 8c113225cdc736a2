"""nlbse24: do the later parts of a long GitHub issue help when each window keeps the title?

Usage: python benchmarks/nlbse24_windows.py [--windows 4] [--tokens 200] [--cache DIR]

``benchmarks/long_text.py`` measured the embedder's ``long_text="chunk"`` (the mean of every window) against
truncation and found it worse on these issues (−3.3 points). That chunking cuts the title off every window but
the first. Here each issue becomes up to ``--windows`` texts ``title + ". " + body window`` (``--tokens`` body
tokens each; a last window under 20 tokens is dropped), embedded with the default frozen encoder, and a logistic
regression (C=10) per repository, the competition's protocol (300 training issues, 300 test issues), is scored
three ways:

- ``first``: the first window only (truncation with the title, what the library does by default);
- ``pool``: the mean of an issue's window vectors, trained and predicted per issue;
- ``win_avg``: trained on every window with its issue's label, predicted by the mean log-probability over the
  issue's windows.

Macro-F1 per repository and the mean of the five; writes ``benchmarks/results/nlbse24_windows.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import cached_vectors, data_dir, save
from nlbse24_ceiling import title
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from transformers import AutoTokenizer

from feedback_nlp import Embedder
from feedback_nlp.embedding import resolve_model


def windows(text: str, tokenizer, k: int, size: int) -> list[str]:
    """``title + ". " + window`` for the first ``k`` windows of ``size`` body tokens."""
    head = title(text)
    ids = tokenizer(text[len(head):].lstrip(". "), add_special_tokens=False)["input_ids"]
    out = [head + ". " + tokenizer.decode(ids[:size])]
    for i in range(1, k):
        piece = ids[i * size:(i + 1) * size]
        if len(piece) < 20:
            break
        out.append(head + ". " + tokenizer.decode(piece))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--cache", type=Path, default=None, help="folder for the window vectors (reused when present)")
    args = ap.parse_args()
    d = data_dir() / "nlbse24_issues"
    splits = {s: pd.read_csv(d / f"{s}_with_repo.csv") for s in ("train", "test")}
    emb = Embedder(backend="torch", long_text="truncate")
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model(None)[1]))
    vectors, owners, seconds = {}, {}, {}
    for s, df in splits.items():
        texts, owner = [], []
        for i, x in enumerate(df["text"].astype(str)):
            w = windows(x, tokenizer, args.windows, args.tokens)
            texts += w
            owner += [i] * len(w)
        t = time.perf_counter()
        vectors[s] = cached_vectors(emb, texts, args.cache, f"nlbse24-windows-{s}-{args.windows}x{args.tokens}")
        seconds[s] = round(time.perf_counter() - t, 1)
        owners[s] = np.asarray(owner)
    rows = []
    for repo in sorted(splits["train"]["repo"].unique()):
        idx = {s: np.flatnonzero(splits[s]["repo"].to_numpy() == repo) for s in splits}
        y = {s: splits[s]["label"].to_numpy() for s in splits}
        mask = {s: np.isin(owners[s], idx[s]) for s in splits}
        first = {s: mask[s] & np.r_[True, owners[s][1:] != owners[s][:-1]] for s in splits}
        row = {"repo": repo}

        def fit(X: np.ndarray, labels: np.ndarray) -> LogisticRegression:
            return LogisticRegression(C=10, max_iter=2000).fit(X, labels)

        c = fit(vectors["train"][first["train"]], y["train"][owners["train"][first["train"]]])
        row["first"] = f1_score(y["test"][idx["test"]], c.predict(vectors["test"][first["test"]]), average="macro")
        pooled = {s: np.stack([vectors[s][owners[s] == i].mean(0) for i in idx[s]]) for s in splits}
        c = fit(pooled["train"], y["train"][idx["train"]])
        row["pool"] = f1_score(y["test"][idx["test"]], c.predict(pooled["test"]), average="macro")
        c = fit(vectors["train"][mask["train"]], y["train"][owners["train"][mask["train"]]])
        lp, o = c.predict_log_proba(vectors["test"][mask["test"]]), owners["test"][mask["test"]]
        mean_lp = np.stack([lp[o == i].mean(0) for i in idx["test"]])
        row["win_avg"] = f1_score(y["test"][idx["test"]], c.classes_[mean_lp.argmax(1)], average="macro")
        rows.append({k: (round(float(v), 4) if k != "repo" else v) for k, v in row.items()})
        print(rows[-1], flush=True)
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in ("first", "pool", "win_avg")}
    print("mean of the 5 repositories:", mean)
    save("nlbse24_windows", {"rows": rows, "mean": mean, "windows": args.windows, "tokens": args.tokens,
                             "windows_per_issue": {s: round(len(owners[s]) / len(splits[s]), 2) for s in splits},
                             "embed_s": seconds, "encoder": emb.model_id})


if __name__ == "__main__":
    main()
