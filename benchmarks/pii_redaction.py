"""PII redaction measured on spans: recall per kind of PII and false positives per kind of look-alike.

The corpus (``tests/fixtures/pii_spans.jsonl``) is hand-written. Its ``dev`` texts were written before the rules
were widened and the rules were then fixed kind by kind on them; its ``heldout`` texts were written after the rules
were frozen (two general fixes followed); its ``heldout2`` texts were written once every rule of the round was in
place and were never tuned on, so their figures are the honest estimate. The ``round13`` texts (person names, national
phone forms, passwords in other languages, share links, card and one-time codes, cookies; with their look-alikes:
greetings to teams and products, "I'm unable") were written with the rules of round 13, so they are dev figures too. Each line holds a feedback-shaped ``text``, the ``pii`` spans that must disappear (``[kind, value]``)
and the ``keep`` spans that must survive verbatim (``[kind, value]``: versions, dates, times, prices, order and
ticket numbers, hashes, UUIDs, build ids, line:col, percentages, HTTP codes, ISBNs, ...). Card and IBAN labels
are checked to be valid (Luhn, mod-97) so a miss is the redactor's and not the corpus's.

- **recall** of a kind: the share of its spans whose value no longer appears in ``redact_pii(text)``;
  **typed** is the share where, besides, the kind's own placeholder (``<EMAIL>``...) appears.
- **false-positive rate** of a look-alike kind: the share of its spans that do not survive verbatim.

Deterministic, no timing. Run: ``python benchmarks/pii_redaction.py`` (writes
``benchmarks/results/pii_redaction.json``; ``--name NAME`` writes ``NAME.json`` instead, ``--show`` prints every
miss and false positive, ``--real`` also counts the placeholders written into the shared data sets' texts, where
no PII is labelled: a rise after a rule change is read as false positives until its hits are looked at).

Example of one corpus line::

    {"id": 0, "text": "mail a@b.io, v1.2.3", "pii": [["EMAIL", "a@b.io"]], "keep": [["version", "v1.2.3"]]}
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from feedback_nlp.cleaning import redact_pii

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pii_spans.jsonl"


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    """The labelled cases; raises ``ValueError`` when a label is not in its text or a card/IBAN label is invalid."""
    cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for case in cases:
        for kind, value in case["pii"] + case["keep"]:
            if value not in case["text"]:
                raise ValueError(f"case {case['id']}: {kind} {value!r} is not in its text")
            digits = re.sub(r"\D", "", value)
            if kind == "CARD" and not _luhn(digits):
                raise ValueError(f"case {case['id']}: card {value!r} fails the Luhn check")
            if kind == "IBAN" and not _mod97(value):
                raise ValueError(f"case {case['id']}: IBAN {value!r} fails the mod-97 check")
    return cases


def _luhn(digits: str) -> bool:
    total = sum((d * 2 - 9 if d > 4 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(digits))))
    return total % 10 == 0


def _mod97(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    return int("".join(str(int(ch, 36)) for ch in s[4:] + s[:4])) % 97 == 1


def evaluate(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Recall per PII kind and false-positive rate per look-alike kind, with the failing spans."""
    pii: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # spans, removed, removed with its own placeholder
    keep: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # spans, altered
    failures: list[dict[str, str]] = []
    for case in cases:
        out = redact_pii(case["text"])
        for kind, value in case["pii"]:
            row = pii[kind]
            row[0] += 1
            if value in out:
                failures.append({"error": f"missed {kind}", "value": value, "text": case["text"], "output": out})
                continue
            row[1] += 1
            row[2] += f"<{kind}>" in out
        for kind, value in case["keep"]:
            keep[kind][0] += 1
            if value not in out:
                keep[kind][1] += 1
                failures.append({"error": f"false positive on {kind}", "value": value, "text": case["text"],
                                 "output": out})
    spans = sum(r[0] for r in pii.values())
    found = sum(r[1] for r in pii.values())
    looks = sum(r[0] for r in keep.values())
    altered = sum(r[1] for r in keep.values())
    return {
        "cases": len(cases),
        "recall": {k: {"spans": n, "recall": round(f / n, 3), "typed": round(t / n, 3)}
                   for k, (n, f, t) in sorted(pii.items())},
        "false_positives": {k: {"spans": n, "altered": a, "rate": round(a / n, 3)} for k, (n, a) in sorted(keep.items())},
        "overall": {"pii_spans": spans, "recall": round(found / spans, 3),
                    "lookalike_spans": looks, "false_positive_rate": round(altered / looks, 3)},
        "failures": failures,
    }


def evaluate_splits(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`evaluate` on the ``dev``, ``heldout``, ``heldout2`` and ``round13`` cases and on all of them."""
    return {split: evaluate([c for c in cases if split == "all" or c.get("split") == split])
            for split in ("dev", "heldout", "heldout2", "round13", "heldout3", "all")}


def _print(name: str, result: dict[str, Any], show: bool) -> None:
    print(f"\n== {name}: {result['cases']} texts\n{'PII kind':10} {'spans':>5} {'recall':>7} {'typed':>6}")
    for kind, row in result["recall"].items():
        print(f"{kind:10} {row['spans']:>5} {row['recall']:>7.3f} {row['typed']:>6.3f}")
    print(f"{'look-alike':10} {'spans':>5} {'altered':>7} {'FP rate':>7}")
    for kind, row in result["false_positives"].items():
        print(f"{kind:10} {row['spans']:>5} {row['altered']:>7} {row['rate']:>7.3f}")
    o = result["overall"]
    print(f"overall recall {o['recall']:.3f} of {o['pii_spans']} spans; false-positive rate "
          f"{o['false_positive_rate']:.3f} of {o['lookalike_spans']} look-alikes")
    if show:
        for f in result["failures"]:
            print(f"  {f['error']}: {f['value']!r} in {f['text']!r} -> {f['output']!r}")


# Real feedback with no PII labels: how often each rule fires is the figure (a rise after a change is read as false
# positives until its hits are looked at). Text columns of the shared data sets.
REAL_SETS = {"nlbse24_issues": ("train.csv", ["text"]), "bugdup_hadoop": ("train.csv", ["text_a", "text_b"]),
             "app_reviews_maalej": ("train.csv", None), "banking77": ("train.csv", None),
             "goemotions": ("train.csv", None), "hwu64": ("train.csv", None)}
_PLACEHOLDER = re.compile(r"<(EMAIL|PHONE|CARD|IBAN|SSN|SECRET|IP|URL|ADDRESS|DOB|NATIONAL_ID|NAME)>")


def real_counts(folder: Path) -> dict[str, Any]:
    """Placeholders per kind that :func:`redact_pii` writes into the shared data sets' texts (sets not found are
    skipped)."""
    import pandas as pd

    out: dict[str, Any] = {}
    for name, (file, columns) in REAL_SETS.items():
        path = folder / name / file
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        texts = [str(t) for c in (columns or [frame.columns[0]]) for t in frame[c] if isinstance(t, str)]
        counts: dict[str, int] = defaultdict(int)
        for text in texts:
            for kind in _PLACEHOLDER.findall(redact_pii(text)):
                counts[kind] += 1
        out[name] = {"texts": len(texts), "placeholders": dict(sorted(counts.items()))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="pii_redaction", help="result file name under benchmarks/results")
    parser.add_argument("--show", action="store_true", help="print every miss and false positive")
    parser.add_argument("--real", action="store_true", help="also count placeholders on the shared data sets "
                        "(FEEDBACK_NLP_DATA; about a minute)")
    args = parser.parse_args(argv)
    result = evaluate_splits(load_corpus())
    for split, res in result.items():
        _print(split, res, args.show and split != "all")
    if args.real:
        from feedback_nlp.datasets import benchmark_data_dir

        result["real"] = real_counts(benchmark_data_dir())
        for name, row in result["real"].items():
            print(f"{name:20} {row['texts']:>6} texts  {row['placeholders']}")
    # only when run as a script: the tests import evaluate() without benchmarks/ on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import save

    print(f"wrote {save(args.name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
