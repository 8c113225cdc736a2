"""Peak memory of reading a large JSON array and a Zendesk export: this tree against an earlier revision.

Writes a JSON array of feedback records (``--mb``, default 200 MB) and a Zendesk tickets export of the same size
(a record per line; the JSON array also minified, on one line) to a temporary folder, then reads each in a fresh Python process (``iter_table_chunks``: what every command
reads, 10,000 rows at a time, for the array and the export; ``read_zendesk``: the whole export as one table,
for the API that returns it) and reports that process's peak resident memory and time. ``--before REV`` runs the same reads with the library as it was at git revision REV
(default: the revision before JSON documents were streamed), so the two figures come from one machine.

Run: ``python benchmarks/json_memory.py [--mb 200] [--before REV] [--kinds zendesk,zendesk-whole]`` (writes ``benchmarks/results/json_memory.json``).
Memory figures do not depend on the machine's load; timings do (``--under-load`` labels them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _common import save

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "64a0014"  # main before the streaming JSON reader (the whole document was parsed at once)

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from feedback_nlp.connectors.zendesk import read_zendesk
from feedback_nlp.records import iter_table_chunks
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if sys.argv[2] == "zendesk-whole":
    rows = len(read_zendesk(sys.argv[3]).frame)
elif sys.argv[2] == "zendesk":  # what every command does: the export's rows a chunk at a time
    rows = sum(len(c) for c in iter_table_chunks(sys.argv[3], 10_000, format="zendesk"))
else:
    rows = sum(len(c) for c in iter_table_chunks(sys.argv[3], 10_000, format="json"))
print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - t, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "rss_after_imports_mb": round(base / 1024)}))
"""


def _record(i: int) -> dict:
    return {"id": f"t{i}", "text": f"The CSV export cuts off long descriptions after 255 characters (ticket {i}); "
            "customers on the Pro plan ask for a fix before the quarter ends.",
            "source": "support", "account_id": f"acct-{i % 997}", "account_revenue": 1200.5 + i % 50,
            "created_at": f"2026-0{1 + i % 9}-1{i % 10}T10:00:00Z", "tags": ["export", "csv"], "priority": i % 4}


def _write_array(path: Path, mb: int, ticket: bool = False, minified: bool = False) -> int:
    """Stream ``mb`` megabytes of records to ``path`` as one array (a Zendesk export when ``ticket``), a record
    per line, or all on one line when ``minified`` (as most exporters write it)."""
    n = 0
    sep = "," if minified else ",\n"
    with open(path, "w") as fh:
        fh.write('{"tickets": [' if ticket else "[")
        while fh.tell() < mb << 20:
            r = _record(n)
            if ticket:
                r = {"id": n, "subject": "CSV export cuts text", "description": r["text"], "requester_id": n % 500,
                     "organization_id": n % 90, "via": {"channel": "email"}, "status": "open", "tags": r["tags"],
                     "created_at": r["created_at"]}
            fh.write((sep if n else "") + json.dumps(r))
            n += 1
        fh.write('], "users": [{"id": 1, "name": "Ann"}], "count": %d}' % n if ticket else "]")
    return n


def _source(rev: str, folder: Path) -> Path:
    """The ``src`` folder of the library at git revision ``rev``, unpacked under ``folder``."""
    archive = folder / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / rev, filter="data")
    return folder / rev / "src"


def _run(src: Path, kind: str, path: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(src), kind, str(path)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1][:300]}
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--before", default=BEFORE, help="git revision to compare against (default: %(default)s)")
    ap.add_argument("--under-load", action="store_true", help="label the timings as measured under load")
    ap.add_argument("--kinds", default="json,json-minified,zendesk,zendesk-whole",
                    help="comma-separated reads to run (default: %(default)s)")
    ap.add_argument("--name", default="json_memory", help="results file name (default: %(default)s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kinds = [k for k in args.kinds.split(",") if k]
        paths = {"json": folder / "array.json", "json-minified": folder / "minified.json",
                 "zendesk": folder / "zendesk.json", "zendesk-whole": folder / "zendesk.json"}
        writers = {"json": lambda p: _write_array(p, args.mb),
                   "json-minified": lambda p: _write_array(p, args.mb, minified=True),
                   "zendesk": lambda p: _write_array(p, args.mb, ticket=True),
                   "zendesk-whole": lambda p: _write_array(p, args.mb, ticket=True)}
        files, rows = {}, {}
        for kind in kinds:
            if paths[kind] not in files.values():
                rows[kind] = writers[kind](paths[kind])
            files[kind] = paths[kind]
        trees = {"before": _source(args.before, folder), "after": ROOT / "src"}
        reader = {"json": "json", "json-minified": "json", "zendesk": "zendesk", "zendesk-whole": "zendesk-whole"}
        runs = {f"{kind}/{when}": _run(src, reader[kind], files[kind]) for kind in files
                for when, src in trees.items()}
        sizes = {k: round(p.stat().st_size / 2**20) for k, p in files.items()}
    result = {"file_mb": sizes, "records": rows, "before": args.before, "measured_under_load": args.under_load,
              "runs": runs}
    path = save(args.name, result)
    for name, r in runs.items():
        print(f"{name:16} {r}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
