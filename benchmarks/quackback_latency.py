"""End-to-end latency of the Quackback integration: webhook delivery → tags written back to Quackback.

A fake Quackback portal (tests/_fake_quackback.py: a real HTTP server on loopback) holds posts made from the
bundled sample's texts; the webhook server runs as its own process — ``feedback-nlp serve`` with the webhook
mounted, and/or the webhook-only ``feedback-nlp quackback serve`` — and the Node sender
(tests/node/quackback_send.mjs) delivers one signed ``post.created`` per post, one after another, as
Quackback does. Per delivery: the webhook's round trip as Node sees it, and the time from sending the delivery
to the fake portal receiving the ``PATCH`` with the tags; plus the processor's own per-step timings.

Run alone for clean figures: ``python benchmarks/quackback_latency.py [--events 50] [--mode both]``
(writes ``benchmarks/results/quackback_latency.json``). Timings taken while other work runs are marked so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import save

from feedback_nlp.datasets import load_sample

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the fake portal and the harness
from _fake_quackback import API_KEY, FakeQuackback  # noqa: E402, I001
from _quackback_harness import WebhookServer, post_created, send, write_secret  # noqa: E402

SECRET = "whsec_benchmark"
TAGS = ("bug", "feature_request", "question", "praise_or_experience")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": round(max(values), 1),
            "mean": round(statistics.fmean(values), 1)}


def run_mode(mode: str, n: int, texts: list[str], tmp: Path) -> dict:
    with FakeQuackback() as qb:
        for name in TAGS:
            qb.add_tag(name)
        command = ("serve",) if mode == "serve" else ("quackback", "serve")
        server = WebhookServer(tmp / f"data-{mode}", write_secret(tmp / "secret", SECRET), portal=qb.url,
                               key_file=write_secret(tmp / "key", API_KEY), command=command,
                               ready_path="/readyz" if mode == "serve" else "/v1/integrations/quackback/status")
        t0 = time.perf_counter()
        server.start()
        startup = time.perf_counter() - t0
        try:
            posts = [qb.add_post(t[:120], t, id=f"post_{mode}_{i}") for i, t in enumerate(texts[:n])]
            # two warm-up deliveries, not counted: the first requests of a fresh process pay one-off costs
            warm = [qb.add_post(t[:120], t, id=f"post_{mode}_warm{i}") for i, t in enumerate(texts[n:n + 2])]
            send(server.url, SECRET, [{"body": post_created(f"evt_{p['id']}", p)} for p in warm], tmp)
            results = send(server.url, SECRET, [{"body": post_created(f"evt_{p['id']}", p)} for p in posts], tmp)
            time.sleep(1.0)
            to_patch, round_trip, steps, written = [], [], {}, 0
            for post, res in zip(posts, results):
                round_trip.append(res["ms"])
                patches = [r for r in qb.requests("PATCH", f"/api/v1/posts/{post['id']}", exact=True) if r.status == 200]
                if patches:
                    written += 1
                    to_patch.append((patches[0].at - res["sent_at"]) * 1000)
                for step, ms in ((res["body"].get("result") or {}).get("ms") or {}).items():
                    steps.setdefault(step, []).append(ms)
        finally:
            server.stop()
    return {"command": " ".join(["feedback-nlp", *command]), "events": n, "written_back": written,
            "startup_s": round(startup, 1),
            "webhook_to_write_back_ms": summary(to_patch) if to_patch else None,
            # the webhook answers once the event is processed (up to --quackback-respond-within, 2 s), so its
            # round trip is the processing latency of every delivery, written back or not
            "webhook_round_trip_ms": summary(round_trip),
            "processor_step_ms_p50": {k: pct(v, 0.5) for k, v in steps.items()},
            "statuses": sorted({r["status"] for r in results})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--mode", choices=["serve", "standalone", "both"], default="both")
    ap.add_argument("--under-load", action="store_true", help="mark the timings as taken on a busy machine")
    args = ap.parse_args()
    os.environ.setdefault("FEEDBACK_NLP_BACKEND", "auto")
    texts = load_sample()["text"].tolist()
    modes = ["serve", "standalone"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory() as tmp:
        out = {m: run_mode(m, args.events, texts, Path(tmp)) for m in modes}
    payload = {"benchmark": "quackback webhook -> write-back latency against the fake portal (loopback)",
               "measured_under_load": args.under_load, "cpus": os.cpu_count(),
               "backend": os.environ["FEEDBACK_NLP_BACKEND"], "modes": out}
    path = save("quackback_latency", payload)
    for r in out.values():
        print(f"{r['command']}: {r['written_back']}/{r['events']} written; webhook -> write-back "
              f"{r['webhook_to_write_back_ms']} ms; round trip {r['webhook_round_trip_ms']} ms; steps p50 "
              f"{r['processor_step_ms_p50']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
