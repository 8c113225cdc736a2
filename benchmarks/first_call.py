"""First call in a fresh home: ``Embedder().encode(["hi"])`` in a new process with an empty FEEDBACK_NLP_HOME.

Usage: python benchmarks/first_call.py [--runs 3]
Goal (issue 14): <= 10 s from ``import feedback_nlp`` to the vector, model load included. Each run is a
separate Python process with a new empty home, no embedding cache and no backend set; ``wall_s`` also counts
interpreter start and exit (torch's teardown).
Writes benchmarks/results/first_call.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save

GOAL_S = 10.0
CHILD = """
import json, time
t0 = time.perf_counter()
from feedback_nlp import Embedder
t1 = time.perf_counter()
e = Embedder()
t2 = time.perf_counter()
v = e.encode(["hi"])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "constructor_s": t2 - t1, "encode_s": t3 - t2, "first_call_s": t3 - t0,
                  "backend": e.backend,
                  "shape": list(v.shape)}))
"""


def one_run() -> dict:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_NLP_")}
        env.update(FEEDBACK_NLP_HOME=home, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["wall_s"] = wall
        row["home_files_after"] = sorted(str(p.relative_to(home)) for p in Path(home).rglob("*"))
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = []
    for i in range(args.runs):
        runs.append(one_run())
        print(f"run {i + 1}: {runs[-1]}", flush=True)
    # the goal counts from `import feedback_nlp` to the vector; the process wall adds interpreter start and exit
    median = statistics.median(r["first_call_s"] for r in runs)
    payload = {"runs": runs, "median_first_call_s": round(median, 2), "goal_s": GOAL_S, "met": median <= GOAL_S,
               "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
               "cpus": len(os.sched_getaffinity(0)), "command": "python benchmarks/first_call.py",
               "timing_note": "measured under load unless rerun alone"}
    save("first_call", payload)
    print(f"median first call {median:.1f} s (goal <= {GOAL_S:.0f} s): {'met' if median <= GOAL_S else 'not met'}")


if __name__ == "__main__":
    main()
