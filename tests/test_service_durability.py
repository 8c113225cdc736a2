"""Durability and lifecycle of real `feedback-nlp serve` processes: SIGKILL in the middle of a stream of
writes loses no acknowledged item and leaves no half-written request; graceful shutdown drains in-flight
requests; two processes share one PostgreSQL; one process per SQLite folder."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from _service_support import Server, httpx, make_key, postgres_url

pytestmark = pytest.mark.slow


def _text(writer: int, batch: int, j: int) -> str:
    return f"Feedback {batch * 7 + j} from writer {writer}: the export of report {batch} fails at step {j}"


def _write_until_killed(server: Server, key: str, writers: int = 3, min_acked: int = 12) -> tuple[list, list]:
    """Stream 4-item backlog writes from several clients, SIGKILL the server once ``min_acked`` were acknowledged."""
    acked, attempted, stop = [], [], threading.Event()

    def write(w: int) -> None:
        with server.client(key, timeout=60) as c:
            b = 0
            while not stop.is_set():
                batch = [{"id": f"w{w}-b{b}-{j}", "text": _text(w, b, j), "metadata": {"writer": w}} for j in range(4)]
                attempted.append(batch)
                try:
                    r = c.post("/v1/backlog", json={"items": batch})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked.append(batch)
                b += 1

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    while len(acked) < min_acked and time.monotonic() < deadline:
        time.sleep(0.01)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= min_acked
    return acked, attempted


def _check_after_restart(server: Server, key: str, acked: list, attempted: list) -> int:
    acked_ids = {it["id"] for batch in acked for it in batch}
    present = 0
    with server.client(key) as c:
        for batch in acked:
            for it in batch:
                r = c.get(f"/v1/backlog/{it['id']}")
                assert r.status_code == 200, f"acknowledged item {it['id']} lost"
                assert r.json()["text"] == it["text"] and r.json()["metadata"] == it["metadata"]
        for batch in attempted:
            if batch[0]["id"] in acked_ids:
                continue
            found = [c.get(f"/v1/backlog/{it['id']}").status_code == 200 for it in batch]
            assert all(found) or not any(found), f"half-written request: {found}"
            present += all(found)
        # the index was rebuilt or is in step with the store: an acknowledged item is found by its text
        last = acked[-1][-1]
        r = c.post("/v1/duplicates", json={"items": [{"text": last["text"]}], "k": 3})
        assert r.json()["results"][0]["matches"][0]["id"] == last["id"]
        assert r.json()["results"][0]["matches"][0]["score"] > 0.999
    return present


def test_sigkill_keeps_every_acknowledged_item_sqlite_and_shutdown_drains(tmp_path):
    data = tmp_path / "data"
    key = make_key("write", data=data)
    server = Server(data).start()
    acked, attempted = _write_until_killed(server, key)
    server.log.close()

    restarted = Server(data).start()
    in_index = _check_after_restart(restarted, key, acked, attempted)
    with restarted.client(key) as c:
        size = c.post("/v1/backlog", json={"items": [{"id": "probe", "text": "probe item for the count"}]}).json()
    assert size["backlog_size"] == len({it["id"] for b in acked for it in b}) + 4 * in_index + 1

    # a second process on the same folder is refused with a clear error, and exits
    other = Server(data)
    other.start(wait=False)
    assert other.proc.wait(120) == 2
    assert "another feedback-nlp serve already uses" in other.log_text() and "Traceback" not in other.log_text()
    other.log.close()

    # graceful shutdown: requests in flight when SIGTERM arrives still complete. Each client keeps sending
    # until the server is gone, so some requests are in flight at the signal however fast the machine is.
    results, started, stop = [], threading.Event(), threading.Event()

    def stream(i: int) -> None:
        with restarted.client(key, timeout=120) as c:
            n = 0
            while not stop.is_set():
                items = [{"id": f"drain-{i}-{n}-{j}", "text": f"Long feedback {i} {n} {j}: " + "the dashboard is slow " * 8}
                         for j in range(16)]
                t0 = time.monotonic()
                started.set()
                try:
                    r = c.post("/v1/backlog", json={"items": items})
                    results.append((r.status_code, t0, time.monotonic()))
                except httpx.TransportError:  # refused or closed once the server stopped accepting: not an answer
                    return
                n += 1

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)
    term_at = time.monotonic()
    code = restarted.stop(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join()
    assert code == 0
    assert all(status == 200 for status, _, _ in results), results
    assert any(t0 < term_at < t1 for _, t0, t1 in results), "no request was in flight at SIGTERM"
    assert "Application shutdown complete" in restarted.log_text()
    assert (data / "backlog.hnsw").exists() and (data / "backlog.hnsw.json").exists()  # index saved for next start


def test_sigkill_durability_and_two_processes_on_postgresql(tmp_path):
    url = postgres_url()
    data = tmp_path / "data"
    key = make_key("write", url=url)
    server = Server(data, url=url).start()
    acked, attempted = _write_until_killed(server, key)
    server.log.close()

    a = Server(tmp_path / "a", url=url).start()
    b = Server(tmp_path / "b", url=url).start()
    try:
        _check_after_restart(a, key, acked, attempted)
        # both processes write; each one reads and finds what the other wrote
        errors = []

        def write(server: Server, tag: str) -> None:
            with server.client(key) as c:
                for i in range(6):
                    r = c.post("/v1/backlog", json={"items": [{"id": f"{tag}-{i}", "text": f"Process {tag} item {i}: "
                                                                f"calendar sync drops events ({i})"}]})
                    if r.status_code != 200:
                        errors.append(r.text)

        threads = [threading.Thread(target=write, args=(s, t)) for s, t in ((a, "A"), (b, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        with a.client(key) as ca, b.client(key) as cb:
            assert all(ca.get(f"/v1/backlog/B-{i}").status_code == 200 for i in range(6))
            assert all(cb.get(f"/v1/backlog/A-{i}").status_code == 200 for i in range(6))
            text = "Process A item 3: calendar sync drops events (3)"
            assert cb.post("/v1/duplicates", json={"items": [{"text": text}], "k": 1}).json()[
                "results"][0]["matches"][0]["id"] == "A-3"
            # the same id written through both processes stays one item
            for c in (ca, cb):
                assert c.post("/v1/backlog", json={"items": [{"id": "shared", "text": "One shared item"}]}).status_code == 200
            assert ca.get("/v1/backlog/shared").status_code == 200
            assert cb.delete("/v1/backlog/shared").status_code == 204
            assert ca.get("/v1/backlog/shared").status_code == 404
    finally:
        assert a.stop() == 0 and b.stop() == 0


def test_a_model_that_cannot_load_ends_the_process_with_one_error_line(tmp_path):
    server = Server(tmp_path / "data", args=("--model", str(tmp_path / "no-such-model")))
    server.start(wait=False)
    saw_not_ready = False
    while server.proc.poll() is None:
        try:
            r = httpx.get(server.base + "/readyz", timeout=2)
            saw_not_ready |= r.status_code == 503 and r.json()["ready"] is False
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log = server.log_text()
    assert server.stop() == 2
    assert "error: ModelNotFoundError" in log and "no-such-model" in log and "Traceback" not in log
    assert saw_not_ready
