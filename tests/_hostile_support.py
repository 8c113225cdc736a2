"""What the hostile-input tests send their inputs to: an in-process Quackback webhook receiver (a fixed
tagger, a backlog that remembers what it was given, ``send(body)`` delivering one signed event and draining the
queue), a test client of the HTTP service serving one small model, and a small tag model for batch jobs.

Shared by tests/test_hostile_inputs_round6.py, tests/test_hostile_inputs_round6b.py,
tests/test_hostile_inputs_round7.py and tests/test_hostile_inputs_round7b.py (the service client itself is
the ``api`` fixture of conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_file(path: Path, text: str | bytes, encoding: str = "utf-8") -> str:
    """Write ``text`` (bytes as they are, text in ``encoding``) to ``path``; returns the path as a string."""
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return str(path)


class FixedTagger:
    """Tags every text ``bug`` at 0.9."""

    def predict(self, texts):
        from feedback_nlp.integrations.quackback._processor import Prediction

        return [Prediction({"bug": 0.9}) for _ in texts]


class MemoryBacklog:
    """A backlog of ``id -> text`` whose search finds every item at 0.95."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def search(self, text, k):
        return [(i, 0.95) for i in self.items][:k]

    def upsert(self, item_id, text, metadata):
        self.items[item_id] = text

    def delete(self, item_id):
        self.items.pop(item_id, None)


def make_hook(folder: Path) -> Any:
    """``send(body) -> (status, payload)``: signs and delivers one event (a dict, or raw bytes as they are),
    then processes the queue; ``send.integration`` and ``send.backlog`` are the receiver's parts."""
    from feedback_nlp.integrations.quackback._secrets import Secret
    from feedback_nlp.integrations.quackback._setup import build_integration
    from feedback_nlp.integrations.quackback._signature import signed_headers

    backlog = MemoryBacklog()
    integration = build_integration(folder, Secret("whsec"), tagger=FixedTagger(), backlog=backlog)

    def send(body):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, payload = integration.receive(signed_headers("whsec", raw), raw)
        integration.drain()
        return status, payload

    send.integration, send.backlog = integration, backlog  # type: ignore[attr-defined]
    return send


def post_json(api: Any, path: str, raw: bytes | dict) -> Any:
    """POST ``raw`` (bytes as they are, a dict as JSON) to the service with a JSON content type."""
    return api.post(path, content=raw if isinstance(raw, bytes) else json.dumps(raw).encode(),
                    headers={"content-type": "application/json"})


def event(event_id: str, kind: str, post: dict, at: str = "2026-01-01T00:00:00Z", **data: Any) -> dict:
    """A webhook event as the contract shapes it."""
    return {"id": event_id, "type": kind, "createdAt": at, "data": {"post": post, **data}}


@contextlib.contextmanager
def service_client(folder: Path, texts: list[str], labels: list[str]) -> Iterator[Any]:
    """A TestClient of the service (no auth) serving one tag model ``t`` trained on ``texts``/``labels`` with
    the tests' HashEmbedder, once the service says it is ready."""
    from fastapi.testclient import TestClient

    import feedback_nlp as fb
    from conftest import HashEmbedder
    from feedback_nlp.service import ServiceConfig, create_app
    from feedback_nlp.service._state import ServiceState

    emb = HashEmbedder()
    fb.TagClassifier(emb).fit(texts, labels).save(folder / "m")
    config = ServiceConfig(data_dir=folder / "data", models={"t": str(folder / "m")}, sentiment=None, auth=False)
    state = ServiceState(config, embedder=emb)
    with TestClient(create_app(config, state=state), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 60
        while not state.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def hashed_tag_model(folder: Path, monkeypatch: Any) -> Path:
    """A small tag model (bug / request) saved under ``folder`` with the tests' HashEmbedder, and put where
    ``tag_file(model, ..., cache=False)`` finds it already loaded (no real embedder is loaded)."""
    import feedback_nlp as fb
    from conftest import HashEmbedder
    from feedback_nlp import _chunks

    clf = fb.TagClassifier(HashEmbedder()).fit(["export fails", "csv export broken", "add dark mode", "please add sso"],
                                               ["bug", "bug", "request", "request"])
    path = clf.save(folder)
    monkeypatch.setitem(_chunks._MODELS, f"{path}|False|None", clf)
    return path


class StopJob(Exception):
    """Raised from a tag job's chunk hook: the job stops there, as a kill would leave it."""


def interrupted_tag_job(model: Any, data: Any, out: Path) -> Path:
    """A tag job of 10 rows in chunks of 3, stopped after its second chunk; returns its parts folder."""
    import pytest

    import feedback_nlp as fb

    def stop(index: int) -> None:
        if index == 1:
            raise StopJob

    with pytest.raises(StopJob):
        fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, chunk_hook=stop)
    return out.with_name(out.name + ".parts")


def slow_redaction(units: list[str], size: int = 50_000, limit: float = 3.0) -> dict[str, float]:
    """The units whose ``size`` characters of repetition take ``redact_pii`` over ``limit`` seconds (generous: the
    machine may be loaded); a linear pattern takes well under 0.1 s."""
    from feedback_nlp.cleaning import redact_pii

    slow = {}
    for unit in units:
        text = (unit * (size // len(unit) + 1))[:size]
        start = time.perf_counter()
        redact_pii(text)
        took = time.perf_counter() - start
        if took > limit:
            slow[unit] = round(took, 2)
    return slow
