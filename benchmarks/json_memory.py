"""Peak memory of reading a large JSON array, a Zendesk export and a Slack export: this tree against an earlier
revision.

Writes a JSON array of feedback records (``--mb``, default 200 MB) and a Zendesk tickets export of the same size
(a record per line; the JSON array also minified, on one line) to a temporary folder, then reads each in a fresh Python process (``iter_table_chunks``: what every command
reads, 10,000 rows at a time, for the array and the export; ``read_zendesk``: the whole export as one table,
for the API that returns it) and reports that process's peak resident memory and time. ``--before REV`` runs the same reads with the library as it was at git revision REV
(default: the revision before JSON documents were streamed), so the two figures come from one machine.

``--kinds slack`` writes a Slack workspace export zip of the same unpacked size (channels of one JSON array of
messages per day, as Slack's export has them) and reads it as every command does.

Run: ``python benchmarks/json_memory.py [--mb 200] [--before REV] [--kinds zendesk,zendesk-whole]`` (writes ``benchmarks/results/json_memory.json``);
``python benchmarks/json_memory.py --mb 200 --kinds slack --before 5df49d7 --name slack_memory`` for Slack.
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
elif sys.argv[2] in ("zendesk", "slack"):  # what every command does: the export's rows a chunk at a time
    rows = sum(len(c) for c in iter_table_chunks(sys.argv[3], 10_000, format=sys.argv[2]))
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


def _write_slack(path: Path, mb: int, per_day: int = 400) -> int:
    """A Slack export zip of about ``mb`` unpacked megabytes: 20 channels, day files of ``per_day`` messages
    (a few replies, joins and bot messages among them, as real exports have), written a day file at a time."""
    import zipfile

    channels = [{"id": f"C{c:08d}", "name": f"feedback-{c}"} for c in range(20)]
    users = [{"id": f"U{u:08d}", "name": f"user{u}", "profile": {"real_name": f"User {u}"}} for u in range(500)]
    n, written, day = 0, 0, 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("channels.json", json.dumps(channels))
        zf.writestr("users.json", json.dumps(users))
        while written < mb << 20:
            channel = channels[day % len(channels)]["name"]
            messages = []
            for _ in range(per_day):
                ts = f"{1767225600 + n}.{n % 1000000:06d}"
                msg = {"type": "message", "ts": ts, "user": f"U{n % 500:08d}",
                       "text": f"<@U{(n + 1) % 500:08d}> the CSV export cuts off long descriptions after 255 "
                               f"characters (report {n}); customers on the Pro plan ask for a fix, see "
                               "<https://acme.example/ticket|the ticket>"}
                if n % 50 == 0:
                    msg = {"type": "message", "subtype": "channel_join", "ts": ts, "user": msg["user"], "text": "joined"}
                elif n % 7 == 0:
                    msg["thread_ts"] = f"{1767225600 + n - 3}.{(n - 3) % 1000000:06d}"
                messages.append(msg)
                n += 1
            raw = json.dumps(messages, indent=4)  # Slack writes its day files indented
            zf.writestr(f"{channel}/2026-{1 + day // 560 % 12:02d}-{1 + day // 20 % 28:02d}-{day}.json", raw)
            written += len(raw)
            day += 1
    return n


def _unpacked(path: Path) -> int:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return sum(info.file_size for info in zf.infolist())


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
                 "zendesk": folder / "zendesk.json", "zendesk-whole": folder / "zendesk.json",
                 "slack": folder / "slack_export.zip"}
        writers = {"json": lambda p: _write_array(p, args.mb),
                   "json-minified": lambda p: _write_array(p, args.mb, minified=True),
                   "zendesk": lambda p: _write_array(p, args.mb, ticket=True),
                   "zendesk-whole": lambda p: _write_array(p, args.mb, ticket=True),
                   "slack": lambda p: _write_slack(p, args.mb)}
        files, rows = {}, {}
        for kind in kinds:
            if paths[kind] not in files.values():
                rows[kind] = writers[kind](paths[kind])
            files[kind] = paths[kind]
        trees = {"before": _source(args.before, folder), "after": ROOT / "src"}
        reader = {"json": "json", "json-minified": "json", "zendesk": "zendesk", "zendesk-whole": "zendesk-whole",
                  "slack": "slack"}
        runs = {f"{kind}/{when}": _run(src, reader[kind], files[kind]) for kind in files
                for when, src in trees.items()}
        sizes = {k: round(p.stat().st_size / 2**20) for k, p in files.items()}
        unpacked = {k: round(_unpacked(p) / 2**20) for k, p in files.items() if p.suffix == ".zip"}
    result = {"file_mb": sizes, "unpacked_mb": unpacked, "records": rows, "before": args.before, "measured_under_load": args.under_load,
              "runs": runs}
    path = save(args.name, result)
    for name, r in runs.items():
        print(f"{name:16} {r}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
