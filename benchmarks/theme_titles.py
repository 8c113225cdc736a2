"""How theme titles read on real data: the share that opens with a symbol, an emoticon or a conjunction (a title
such as ">:( The app closes …" or "Then you have to go back …"), and whether a title names the dominant class
(the readability measure of themes_quality.py), for the default ThemeModel on six data sets.

``--baseline-rev REV`` also titles the same themes (same members, same centres) with the title code of a git
revision, so that a change to the titles is compared on identical clusters.

    python benchmarks/theme_titles.py --baseline-rev 0bdfff1
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_dir, save
from themes_quality import _stems, load_set

from feedback_nlp import Embedder
from feedback_nlp.themes import ThemeModel, central_title

SETS = ("banking77", "hwu64", "goemotions", "app_reviews", "sample", "nlbse24")
_OPENING = re.compile(r"^(?:[^\w\s]|(?:and|but|or|then|because|plus|although|though|otherwise|nor)\b)", re.I)
_EMOTICON = re.compile(r"(?:^|\s)(?:[:;=8x][-'^]?[()DPp3/|]|<3)(?:\s|$)", re.I)


def _baseline_title(rev: str):
    """``central_title`` as it was at git revision ``rev``."""
    source = subprocess.run(["git", "show", f"{rev}:src/feedback_nlp/themes/_labels.py"], capture_output=True,
                            text=True, check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    source = (source.replace("from .._", "from feedback_nlp._").replace("from ._", "from feedback_nlp.themes._"))
    path = Path(tempfile.mkdtemp()) / "labels_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("labels_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.central_title


def _stats(titles: list[str], dominant: list[str]) -> dict:
    return {"themes": len(titles),
            "opening_with_symbol_or_conjunction": sum(bool(_OPENING.match(t)) for t in titles),
            "with_emoticon": sum(bool(_EMOTICON.search(t)) for t in titles),
            "naming_the_dominant_class": sum(bool(_stems(t) & _stems(d.replace("_", " ").replace("/", " ")))
                                             for t, d in zip(titles, dominant))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--baseline-rev", default=None)
    ap.add_argument("--name", default="theme_titles")
    args = ap.parse_args()
    baseline = _baseline_title(args.baseline_rev) if args.baseline_rev else None
    emb = Embedder()
    results: dict = {"baseline_rev": args.baseline_rev, "sets": {}}
    for name in args.sets.split(","):
        if name == "nlbse24":
            df = pd.read_csv(data_dir() / "nlbse24_issues" / "test.csv")
            texts, y = df["text"].astype(str).tolist(), df["label"].astype(str).to_numpy()
        else:
            texts, y = load_set(name)
        tm = ThemeModel().fit(texts, embeddings=emb.encode(texts))
        now, before, dominant = [], [], []
        for c, k in enumerate(tm.theme_ids_.tolist()):
            members = np.flatnonzero(tm.labels_ == k)
            member_texts = [tm.texts_[i] for i in members]
            sims = tm.embeddings_[members] @ tm.centroids_[c]
            now.append(central_title(member_texts, sims))
            before.append(baseline(member_texts, sims) if baseline else now[-1])
            dominant.append(Counter(y[members].tolist()).most_common(1)[0][0])
        res = {"n": len(texts), "now": _stats(now, dominant),
               "changed": [{"before": b, "now": n} for b, n in zip(before, now) if b != n]}
        if baseline:
            res["baseline"] = _stats(before, dominant)
        results["sets"][name] = res
        print(name, {k: v for k, v in res.items() if k != "changed"}, flush=True)
        for ch in res["changed"]:
            print(f"    {ch['before']!r} -> {ch['now']!r}")
    print("wrote", save(args.name, results))


if __name__ == "__main__":
    sys.exit(main())
