"""Load test of `feedback-nlp serve` on loopback (issue 17): single-item POST /v1/tag at 1, 8, 32 and 128
concurrent clients, then an optional soak at moderate load with the server's memory over time.

The script starts its own server (a temporary SQLite folder, a fresh API key) on a free loopback port, measures
offline ``Embedder.encode`` throughput of the same backend before the server starts and after the levels (the
mean is the baseline), reads the server's own embedder counters per level (texts per pass, the model's items/s
without client overhead) and stops by itself:
every level runs for a fixed duration with a bounded number of clients. Reports p50/p95/p99 latency, requests/s,
items/s, errors and the server's peak RSS per level; the soak records RSS every few seconds.

Usage:
    python benchmarks/serve.py                                  # 20 s per level, no soak
    python benchmarks/serve.py --duration 60 --soak-minutes 10  # the issue's full run
Writes benchmarks/results/serve.json. Timings depend on what else runs on the machine: the JSON records the
load average before the run and flags it when other work shared the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from _common import save

ROOT = Path(__file__).resolve().parent.parent


def sample_texts() -> list[str]:
    from feedback_nlp.datasets import load_sample

    texts = load_sample()["text"].dropna().astype(str).tolist()
    return [t for t in texts if t.strip()]


def offline_throughput(texts: list[str], backend: str | None, batch: int) -> dict:
    """Items/s of ``Embedder.encode`` on the same texts and backend, in batches like the server's."""
    from feedback_nlp import Embedder

    # clean=True: the server cleans every text before embedding it (and pays for it), so the baseline embeds the
    # same cleaned texts; with raw texts (quoted replies, signatures) the baseline was ~2.6x slower than the server.
    emb = Embedder(backend=backend)
    emb.encode(texts[:64])  # load and warm up
    start = time.perf_counter()
    for s in range(0, len(texts), batch):
        emb.encode(texts[s:s + batch])
    elapsed = time.perf_counter() - start
    return {"backend": emb.backend, "items": len(texts), "seconds": round(elapsed, 2),
            "items_per_s": round(len(texts) / elapsed, 1), "batch": batch}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, port: int, backend: str | None, max_batch: int,
                 extra: list[str]) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    if backend:
        env["FEEDBACK_NLP_BACKEND"] = backend
    key = subprocess.run([sys.executable, "-m", "feedback_nlp.cli", "keys", "create", "--data", str(data), "--name",
                          "bench", "--scope", "admin"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "feedback_nlp.cli", "serve", "--data", str(data), "--port", str(port),
                             "--max-batch", str(max_batch), *extra], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(data / "serve.log", "wb"))  # noqa: SIM115 - lives as long as the server
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(data / 'serve.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, key
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready after 600 s")


def embed_counters(base: str, key: str) -> dict[str, float]:
    """The server's embedder counters from /metrics: texts, passes and seconds spent in the model."""
    text = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30).text
    out = {}
    for line in text.splitlines():
        for name in ("feedback_nlp_embed_batch_texts_sum", "feedback_nlp_embed_batch_texts_count",
                     "feedback_nlp_embed_seconds_sum"):
            if line.startswith(name + " "):
                out[name] = float(line.split()[1])
    return out


def server_side(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """Mean texts per embedder pass and the model's own items/s during a level (client overhead excluded)."""
    texts = after["feedback_nlp_embed_batch_texts_sum"] - before["feedback_nlp_embed_batch_texts_sum"]
    passes = after["feedback_nlp_embed_batch_texts_count"] - before["feedback_nlp_embed_batch_texts_count"]
    seconds = after["feedback_nlp_embed_seconds_sum"] - before["feedback_nlp_embed_seconds_sum"]
    return {"mean_texts_per_pass": round(texts / passes, 1) if passes else None,
            "model_items_per_s": round(texts / seconds, 1) if seconds else None}


class Connection:
    """A minimal keep-alive HTTP/1.1 client connection. httpx's pool costs grow with concurrency (at 32+ clients
    in one process the client, not the server, set the pace), so the load generator speaks HTTP itself."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {self.key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        payload = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def run_level(base: str, key: str, texts: list[str], clients: int, duration: float, proc: psutil.Process,
                    rate_per_client: float | None = None, rss_every: float = 0.5) -> dict:
    """``clients`` loops posting one item each for ``duration`` seconds (optionally paced); RSS sampled."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    rss: list[tuple[float, float]] = []
    stop_at = time.monotonic() + duration
    host, port = base.removeprefix("http://").split(":")

    async def worker(w: int) -> None:
        conn, i = Connection(host, int(port), key), w
        try:
            while time.monotonic() < stop_at:
                body = json.dumps({"items": [{"id": str(i), "text": texts[i % len(texts)]}]}).encode()
                t0 = time.perf_counter()
                try:
                    status, _ = await conn.post("/v1/tag", body)
                    if status == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors[str(status)] = errors.get(str(status), 0) + 1
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await conn.close()
                i += clients
                if rate_per_client:
                    await asyncio.sleep(max(0.0, 1.0 / rate_per_client - (time.perf_counter() - t0)))
        finally:
            await conn.close()

    async def sample_rss() -> None:
        t0 = time.monotonic()
        while time.monotonic() < stop_at:
            rss.append((round(time.monotonic() - t0, 1), round(proc.memory_info().rss / 2**20, 1)))
            await asyncio.sleep(rss_every)

    t0 = time.perf_counter()
    await asyncio.gather(sample_rss(), *(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies),
            "rps": round(len(latencies) / elapsed, 1), "items_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": errors,
            "peak_rss_mb": max(r for _, r in rss) if rss else None, "rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,8,32,128", help="concurrency levels (default: %(default)s)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per level (default: %(default)s)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of traffic before each level is timed")
    ap.add_argument("--soak-minutes", type=float, default=0.0, help="soak length; 0 skips it (issue: 10)")
    ap.add_argument("--soak-clients", type=int, default=8)
    ap.add_argument("--soak-rate", type=float, default=5.0, help="requests/s per soak client (moderate load)")
    ap.add_argument("--offline-items", type=int, default=1024)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--backend", default=os.environ.get("FEEDBACK_NLP_BACKEND"), help="embedding backend (default: auto)")
    ap.add_argument("--server-args", default="", help="extra `serve` options, e.g. '--max-wait-ms 5'")
    ap.add_argument("--out", default="serve")
    args = ap.parse_args()

    load_before = os.getloadavg()
    texts = sample_texts()
    offline = offline_throughput(texts[:args.offline_items], args.backend, 32)
    print(f"offline Embedder.encode ({offline['backend']}): {offline['items_per_s']} items/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="fnlp-bench-") as tmp:
        port = free_port()
        server, key = start_server(Path(tmp), port, args.backend or offline["backend"], args.max_batch,
                                   args.server_args.split())
        base = f"http://127.0.0.1:{port}"
        proc = psutil.Process(server.pid)
        levels = []
        try:
            for clients in [int(c) for c in args.clients.split(",")]:
                asyncio.run(run_level(base, key, texts, clients, args.warmup, proc))
                before = embed_counters(base, key)
                level = asyncio.run(run_level(base, key, texts, clients, args.duration, proc))
                level.update(server_side(before, embed_counters(base, key)))
                level.pop("rss")
                levels.append(level)
                print(f"{clients:>4} clients: p50 {level['p50_ms']} ms  p95 {level['p95_ms']} ms  p99 {level['p99_ms']} "
                      f"ms  {level['rps']} req/s  errors {level['errors']}  peak RSS {level['peak_rss_mb']} MB  "
                      f"{level['mean_texts_per_pass']} texts/pass, model {level['model_items_per_s']} items/s",
                      flush=True)
            soak = None
            if args.soak_minutes > 0:
                soak = asyncio.run(run_level(base, key, texts, args.soak_clients, args.soak_minutes * 60, proc,
                                             rate_per_client=args.soak_rate, rss_every=5.0))
                first = [r for t, r in soak["rss"] if t <= soak["seconds"] * 0.25]
                last = [r for t, r in soak["rss"] if t >= soak["seconds"] * 0.75]
                soak["rss_first_quarter_mb"] = round(float(np.mean(first)), 1)
                soak["rss_last_quarter_mb"] = round(float(np.mean(last)), 1)
                soak["rss_growth_mb"] = round(soak["rss_last_quarter_mb"] - soak["rss_first_quarter_mb"], 1)
                print(f"soak {args.soak_minutes} min: RSS {soak['rss_first_quarter_mb']} -> "
                      f"{soak['rss_last_quarter_mb']} MB, errors {soak['errors']}", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
    # measured again after the levels: with other work on the machine, one measurement could flatter either side
    offline_after = offline_throughput(texts[:args.offline_items], offline["backend"], 32)
    offline["items_per_s_before"] = offline["items_per_s"]
    offline["items_per_s_after"] = offline_after["items_per_s"]
    offline["items_per_s"] = round((offline["items_per_s_before"] + offline_after["items_per_s"]) / 2, 1)
    by_clients = {lv["clients"]: lv for lv in levels}
    load_after = os.getloadavg()
    contaminated = load_before[0] > 1.0  # the run itself puts ~2 on the load average; anything before it is others'
    goals = {
        "p50_ms_1_client": {"goal": "<= 15", "value": by_clients.get(1, {}).get("p50_ms"),
                            "met": by_clients.get(1, {}).get("p50_ms", 1e9) <= 15},
        "items_per_s_32_clients_vs_offline": {
            "goal": ">= 0.70", "value": round(by_clients.get(32, {}).get("items_per_s", 0) / offline["items_per_s"], 3),
            "met": by_clients.get(32, {}).get("items_per_s", 0) >= 0.7 * offline["items_per_s"]},
        "errors": {"goal": 0, "value": sum(sum(lv["errors"].values()) for lv in levels),
                   "met": all(not lv["errors"] for lv in levels)},
    }
    if soak is not None:
        goals["soak_rss_growth_mb"] = {"goal": "flat (< 5% growth)", "value": soak["rss_growth_mb"],
                                       "met": soak["rss_growth_mb"] < 0.05 * soak["rss_first_quarter_mb"]}
    payload = {"command": "python " + " ".join(["benchmarks/serve.py", *sys.argv[1:]]),
               "conditions": ("measured under load: other processes shared the CPU (load average "
                              f"{load_before[0]:.1f} before the run)") if contaminated else "machine otherwise idle",
               "cpu_count": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after,
               "offline": offline, "levels": levels, "soak": soak, "goals": goals}
    path = save(args.out, payload)
    for name, g in goals.items():
        print(f"{name}: {g['value']} (goal {g['goal']}) {'met' if g['met'] else 'NOT met'}")
    print(f"wrote {path} ({payload['conditions']})")


if __name__ == "__main__":
    main()
