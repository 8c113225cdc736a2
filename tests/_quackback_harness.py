"""Runs the Quackback webhook as a real server process and sends it deliveries with the Node sender.

Shared by tests/test_quackback_e2e.py and benchmarks/quackback_latency.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

NODE = shutil.which("node")
SENDER = Path(__file__).resolve().parent / "node" / "quackback_send.mjs"
SRC = Path(__file__).resolve().parent.parent / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


class WebhookServer:
    """``feedback-nlp quackback serve`` in a child process (its own session, so SIGKILL takes only it)."""

    def __init__(self, data_dir: Path, secret_file: Path, *, portal: str | None = None, key_file: Path | None = None,
                 extra: tuple[str, ...] = (), command: tuple[str, ...] = ("quackback", "serve"),
                 ready_path: str = "/v1/integrations/quackback/status") -> None:
        self.ready_path = ready_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "feedback_nlp.cli", *command, "--data", str(data_dir),
                     "--port", str(self.port), "--quackback-secret-file", str(secret_file), *extra]
        if portal:
            self.args += ["--quackback-url", portal, "--quackback-key-file", str(key_file), "--write-back"]
        self.log = Path(tempfile.mkstemp(prefix="quackback-server-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240.0) -> WebhookServer:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        env.pop("QUACKBACK_WEBHOOK_SECRET", None)
        env.pop("QUACKBACK_API_KEY", None)
        self.proc = subprocess.Popen(self.args, stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def status(self, token: str | None = None) -> dict:
        return self.get("/v1/integrations/quackback/status", token)

    def get(self, path: str, token: str | None = None) -> dict:
        return self.call("GET", path, token=token)[1]

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def cmdline(self) -> str:
        return Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush — the crash the durability promise is about."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def result_of(server: WebhookServer, sent: dict, token: str | None = None, timeout: float = 60.0) -> dict:
    """The processed event of a delivery: from the webhook's answer (200), or polled once it answered 202 —
    on a loaded machine processing may outlast the webhook's wait."""
    if sent["status"] == 200:
        return sent["body"]
    assert sent["status"] == 202, sent
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = server.get(f"/v1/integrations/quackback/events/{sent['body']['event']}", token)
        if row.get("state") in ("done", "failed"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"event {sent['body']['event']} not processed in {timeout}s")


def create_key(data_dir: Path, scope: str = "write") -> str:
    """An API key of the service (``feedback-nlp keys create``), for its protected endpoints."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "feedback_nlp.cli", "keys", "create", "--data", str(data_dir),
                          "--name", "tests", "--scope", scope], env=env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return res.stdout.strip().splitlines()[-1]


def send(url: str, secret: str, deliveries: list[dict], tmp: Path) -> list[dict]:
    """Send deliveries with the Node sender (see tests/node/quackback_send.mjs); returns its result lines."""
    spec = tmp / f"deliveries-{time.monotonic_ns()}.jsonl"
    spec.write_text("".join(json.dumps(d) + "\n" for d in deliveries))
    res = subprocess.run([NODE, str(SENDER), url + "/v1/integrations/quackback/webhook", str(spec)],
                         env={**os.environ, "QUACKBACK_WEBHOOK_SECRET": secret}, capture_output=True, text=True,
                         timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"node sender failed: {res.stderr[-2000:]}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def post_created(event_id: str, post: dict) -> dict:
    return {"id": event_id, "type": "post.created", "createdAt": post["createdAt"],
            "data": {"post": {k: post[k] for k in ("id", "title", "content", "boardId", "boardSlug", "voteCount")}}}
