"""PII redaction: precision and recall per kind on a labelled set of positives and look-alike negatives.

The set (``tests/fixtures/ingest/pii_labelled.jsonl``) holds one text per line with the kind of PII in it
and the exact secret substring, or no kind for a look-alike (versions, order ids, dates, times, hashes).
Each case has a ``split``: ``dev`` cases were used while writing the rules; ``heldout`` cases were written
after the rules were frozen and never tuned on, so their figures are the honest estimate.
A positive counts as found when the kind's placeholder appears and the secret is gone; any placeholder of
kind K in a text without a K is a false positive of K. Deterministic; no timing.

Run: ``python benchmarks/pii.py`` (writes ``benchmarks/results/pii.json``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from _common import save

from feedback_nlp.cleaning import redact_pii

CASES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ingest" / "pii_labelled.jsonl"
KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "SECRET", "IP", "URL", "NAME")


def evaluate(cases: list[dict]) -> dict:
    """Per-kind counts and precision/recall, plus the misses, for a list of labelled cases."""
    tp, fn, fp = Counter(), Counter(), Counter()
    misses: list[dict] = []
    for case in cases:
        out = redact_pii(case["text"])
        kind = case["kind"]
        if kind is not None:
            found = f"<{kind}>" in out and case["secret"] not in out
            (tp if found else fn)[kind] += 1
            if not found:
                misses.append({"text": case["text"], "kind": kind, "output": out, "error": "missed"})
        for other in KINDS:
            if other != kind and f"<{other}>" in out:
                fp[other] += 1
                misses.append({"text": case["text"], "kind": kind, "output": out, "error": f"false <{other}>"})
    table = {}
    for k in KINDS:
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else None
        table[k] = {"positives": tp[k] + fn[k], "tp": tp[k], "fn": fn[k], "fp": fp[k],
                    "precision": None if p is None else round(p, 3), "recall": None if r is None else round(r, 3)}
    negatives = [c for c in cases if c["kind"] is None]
    clean_negatives = sum(redact_pii(c["text"]) == c["text"] for c in negatives)
    return {"kinds": table, "negatives": len(negatives), "negatives_untouched": clean_negatives, "errors": misses}


def main() -> int:
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = {"cases": len(cases), "splits": {}}
    for split in ("heldout", "dev", "all"):
        chosen = [c for c in cases if split == "all" or c.get("split") == split]
        result["splits"][split] = evaluate(chosen) | {"cases": len(chosen)}
    path = save("pii", result)
    for split, res in result["splits"].items():
        print(f"\n{split} ({res['cases']} cases)\n{'kind':8} {'n':>3} {'fp':>3} {'precision':>9} {'recall':>6}")
        for k, row in res["kinds"].items():
            print(f"{k:8} {row['positives']:>3} {row['fp']:>3} {row['precision']!s:>9} {row['recall']!s:>6}")
        print(f"look-alike negatives untouched: {res['negatives_untouched']}/{res['negatives']}")
        if split != "all":
            for e in res["errors"]:
                print(f"  {e['error']}: {e['text']!r} -> {e['output']!r}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
