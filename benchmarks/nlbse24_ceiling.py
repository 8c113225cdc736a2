"""nlbse24: how far can all-MiniLM-L6-v2 go? An upper bound from models already trained.

Usage: python benchmarks/nlbse24_ceiling.py [--raw benchmarks/results/nlbse24_sweep-h200-raw] [--cache FILE]
       [--encoder DIR [--encoder-cache FILE]] [--finetuned FILE] [--name NAME]

No training of encoders: it reads the test probabilities that ``benchmarks/nlbse24_sweep.py`` saved for every
(config, seed, repository) it ran (26 fine-tuned models per repository on the H200) and scores

- each model alone and the mean log-probability of *all* of them (an ensemble no training budget allows:
  26 × 3–7 minutes per repository on this CPU);
- a frozen-encoder logistic regression on three views of each issue — the whole text, the text with code
  fences, links, images, HTML comments and hex ids compacted (``compact``), and the title alone (the text up to
  the dataset's ``title + ". "`` join) — alone and added to those ensembles with weight 0.5, 1 or 2.

The weight is picked *on the test issues*, so the best figure is an optimistic upper bound, not a method: if it
stays under the goal (0.83, SetFit with all-mpnet-base-v2), no recipe built from these parts reaches it.

With ``--encoder DIR`` (e.g. all-mpnet-base-v2 from ``benchmarks/get_mpnet.py``), the library's default frozen
head (logistic regression + words) on that encoder is scored per repository too, alone and beside the saved
models (weight 1: nothing picked on the test issues).

With ``--finetuned FILE`` (the JSON of ``benchmarks/adapters.py --probabilities``, e.g. all-mpnet-base-v2
fine-tuned on the CPU), those models' test probabilities are scored alone and with the MiniLM models (sum of
log-probabilities, weight 1, and soft voting: an ensemble of two encoders trained apart, nothing picked on the
test issues), on the repositories the file has; the models' mean top probabilities are recorded beside them.
Writes ``benchmarks/results/nlbse24_ceiling-NAME.json``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, data_dir, save
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

_IMG = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:https?://)[^)]*\)")
_URL = re.compile(r"https?://([^/\s)]+)[^\s)]*")
_FENCE = re.compile(r"```.*?(```|$)", re.S)
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.S)
_HEX = re.compile(r"\b[0-9a-f]{8,}\b|\b0x[0-9a-fA-F]+\b")


def compact(text: str) -> str:
    """Code fences, images, links, HTML comments and hex ids shrunk to short markers."""
    t = _COMMENT.sub(" ", text)
    t = _FENCE.sub(" [code] ", t)
    t = _IMG.sub(" [image] ", t)
    t = _LINK.sub(r"\1", t)
    t = _URL.sub(lambda m: f"[{m.group(1)} link]", t)
    t = _HEX.sub(" ", t)
    return re.sub(r"\s+", " ", t).strip() or "empty"


def title(text: str) -> str:
    """The dataset joins ``title + ". " + body``: the part before the first ". " (or the first 200 chars)."""
    i = text.find(". ")
    return text[:i] if 0 < i < 300 else text[:200]


def _load_raw(folder: Path) -> dict[str, dict[tuple[str, int], dict[str, Any]]]:
    raw: dict[str, dict[tuple[str, int], dict[str, Any]]] = collections.defaultdict(dict)
    for path in sorted(glob.glob(str(folder / "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if not r["half"]:  # self-trained runs score half the issues: not comparable
                    raw[r["repo"]][(r["config"], int(r["seed"]))] = r
    return raw


def _macro_f1(labels: list[str], classes: list[str], logp: np.ndarray) -> float:
    return float(f1_score(labels, [classes[i] for i in logp.argmax(1)], average="macro"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default=str(RESULTS / "nlbse24_sweep-h200-raw"))
    ap.add_argument("--cache", default=None, help="embedding cache (sqlite) for the frozen views")
    ap.add_argument("--encoder", default=None, help="another sentence-transformers folder for a frozen head")
    ap.add_argument("--encoder-cache", default=None, help="embedding cache (sqlite) for --encoder")
    ap.add_argument("--finetuned", default=None, help="adapters.py --probabilities JSON of other fine-tuned models")
    ap.add_argument("--name", default="h200-raw")
    a = ap.parse_args()

    from feedback_nlp import Embedder

    folder = data_dir() / "nlbse24_issues"
    tr = pd.read_csv(folder / "train_with_repo.csv")
    te = pd.read_csv(folder / "test_with_repo.csv")
    raw = _load_raw(Path(a.raw))
    repos = sorted(raw)
    keys = sorted(set.intersection(*[set(raw[r]) for r in repos]))

    t0 = time.perf_counter()
    emb = Embedder(cache=a.cache) if a.cache else Embedder()
    texts = tr.text.tolist() + te.text.tolist()
    views = {"full": emb.encode(texts), "compact": emb.encode([compact(t) for t in texts]),
             "title": emb.encode([title(t) for t in texts])}
    embed_s = round(time.perf_counter() - t0, 1)
    n = len(tr)

    def frozen(names: list[str]) -> dict[str, np.ndarray]:
        x = np.hstack([views[v] for v in names])
        out = {}
        for repo in repos:
            a_ = np.where(tr.repo.values == repo)[0]
            b_ = n + np.where(te.repo.values == repo)[0]
            clf = LogisticRegression(C=1.0, max_iter=3000).fit(x[a_], tr.label.values[a_])
            assert list(clf.classes_) == raw[repo][keys[0]]["classes"]
            assert list(te.label.values[b_ - n]) == list(raw[repo][keys[0]]["labels"]), repo
            out[repo] = np.log(np.clip(clf.predict_proba(x[b_]), 1e-9, 1))
        return out

    def score(models: list[tuple[str, int]], extra: dict[str, np.ndarray] | None = None, w: float = 0.0,
              only: list[str] | None = None) -> dict:
        per = {}
        for repo in only or repos:
            rs = [raw[repo][k] for k in models]
            logp = np.zeros((len(rs[0]["labels"]) if rs else 300, 3))
            if rs:
                logp = np.mean([np.log(np.clip(np.array(r["proba"]), 1e-9, 1)) for r in rs], axis=0)
            if extra is not None:
                logp = logp + w * extra[repo]
            ref = raw[repo][keys[0]]
            per[repo] = round(_macro_f1(ref["labels"], ref["classes"], logp), 4)
        return {"mean": round(float(np.mean(list(per.values()))), 4), "per_repo": per}

    contrastive = [k for k in keys if k[0].startswith("con")]
    rows: dict[str, Any] = {f"{c}/seed{s}": score([(c, s)]) for c, s in keys}
    rows["ensemble: all fine-tuned"] = score(keys)
    rows["ensemble: all contrastive"] = score(contrastive)
    mv = frozen(["full", "compact", "title"])
    for names in (["full"], ["compact"], ["title"], ["full", "title"], ["full", "compact", "title"]):
        rows["frozen LR: " + "+".join(names)] = score([], frozen(names), 1.0)
    for w in (0.5, 1.0, 2.0):
        rows[f"all fine-tuned + frozen 3 views, w={w}"] = score(keys, mv, w)
        rows[f"all contrastive + frozen 3 views, w={w}"] = score(contrastive, mv, w)
        rows[f"con256/seed0 + frozen 3 views, w={w}"] = score([("con256", 0)], mv, w)
    other: dict[str, Any] = {}
    if a.encoder:
        from feedback_nlp.tagging import TagClassifier

        t1 = time.perf_counter()
        enc = Embedder(a.encoder, cache=a.encoder_cache)
        x = enc.encode(texts)
        other = {"encoder": enc.model_id, "embed_s": round(time.perf_counter() - t1, 1)}
        logp = {}
        for repo in repos:
            a_ = np.where(tr.repo.values == repo)[0]
            b_ = np.where(te.repo.values == repo)[0]
            clf = TagClassifier(enc, random_state=0).fit(x[a_], tr.label.values[a_].tolist(),
                                                         texts=tr.text.values[a_].tolist())
            P = clf.predict_proba(x[n + b_], texts=te.text.values[b_].tolist())
            assert list(P.columns) == raw[repo][keys[0]]["classes"]
            logp[repo] = np.log(np.clip(P.to_numpy(), 1e-9, 1))
        name = Path(a.encoder).name
        rows[f"frozen {name} (logreg + words)"] = score([], logp, 1.0)
        for label, models in (("con128x/seed0 (the defaults)", [("con128x", 0)]), ("con256/seed0", [("con256", 0)]),
                              ("all 11 contrastive", contrastive)):
            rows[f"{label} + frozen {name}, w=1"] = score(models, logp, 1.0)
    if a.finetuned:
        saved = json.loads(Path(a.finetuned).read_text(encoding="utf-8"))
        name = Path(saved["encoder"]).name.split("@")[0]
        tuned = {}
        for r in saved["rows"]:
            ref = raw[r["repo"]][keys[0]]
            assert r["classes"] == ref["classes"] and len(r["test_proba"]) == len(ref["labels"]), r["repo"]
            tuned[r["repo"]] = np.log(np.clip(np.array(r["test_proba"]), 1e-9, 1))
        # a run still going (or stopped) has fewer repositories: every row of this block is scored on the same
        # ones, and says how many
        sub = sorted(tuned)
        tag = "" if sub == repos else f" [{len(sub)} repositories]"
        other["finetuned"] = {"file": a.finetuned, "encoder": saved["encoder"], "repositories": sub,
                              "train_s": {r["repo"]: r["train_s"] for r in saved["rows"]}}
        rows[f"fine-tuned {name}{tag}"] = score([], tuned, 1.0, sub)
        # an ensemble can only help where each model's probabilities say how sure it is: the mean top
        # probability beside the accuracy shows over-confidence (the in-sample calibration gives ~1.0)
        other["finetuned"]["mean_top_probability"] = {
            name: round(float(np.mean([np.exp(tuned[r]).max(1).mean() for r in sub])), 3),
            **{f"{c}/seed{s_}": round(float(np.mean([np.array(raw[r][(c, s_)]["proba"]).max(1).mean() for r in sub])), 3)
               for c, s_ in (("con128x", 0), ("con256", 0))}}
        for label, models in (("con128x/seed0 (the defaults)", [("con128x", 0)]), ("con256/seed0", [("con256", 0)]),
                              ("all 11 contrastive", contrastive)):
            if tag:
                rows[f"{label} alone{tag}"] = score(models, only=sub)
            rows[f"{label} + fine-tuned {name}, w=1{tag}"] = score(models, tuned, 1.0, sub)
        # soft voting (scikit-learn's VotingClassifier): the mean of the two models' probabilities; the sum of
        # log-probabilities above lets an over-confident model (in-sample calibration) decide alone
        for label, models in (("con128x/seed0 (the defaults)", [("con128x", 0)]), ("con256/seed0", [("con256", 0)])):
            per = {}
            for repo in sub:
                ref = raw[repo][keys[0]]
                p = np.mean([np.array(raw[repo][k]["proba"]) for k in models] + [np.exp(tuned[repo])], axis=0)
                per[repo] = round(_macro_f1(ref["labels"], ref["classes"], np.log(np.clip(p, 1e-9, 1))), 4)
            rows[f"{label} + fine-tuned {name}, soft voting{tag}"] = {
                "mean": round(float(np.mean(list(per.values()))), 4), "per_repo": per}
        rows[f"con128x/seed0 + fine-tuned {name} + frozen 3 views, w=1{tag}"] = score(
            [("con128x", 0)], {r: tuned[r] + mv[r] for r in sub}, 1.0, sub)
    best = max((k for k in rows if "repositories]" not in k), key=lambda k: rows[k]["mean"])  # all five only
    for k, v in rows.items():
        print(f"{k:45s} {v['mean']:.4f}  " + " ".join(f"{x:.3f}" for x in v["per_repo"].values()))
    print(f"best (weight picked on the test issues: an upper bound): {best} {rows[best]['mean']:.4f}")
    save(f"nlbse24_ceiling-{a.name}", {"raw": a.raw, "models_per_repo": len(keys), "embed_s": embed_s,
                                       "rows": rows, "best": {"row": best, **rows[best]},
                                       "goal": 0.83, **({"other_encoder": other} if other else {})})


if __name__ == "__main__":
    main()
