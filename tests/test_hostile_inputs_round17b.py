"""Hostile and careless inputs, round 17b: the HTTP service as an integrating developer and an attacker on the
network meet it (metrics labels, the published OpenAPI schema, content codings, CORS refusals). Each test failed
before its fix. Everything runs in process (the tests' HashEmbedder, no model)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


def _client(folder: Path, **config):
    from fastapi.testclient import TestClient

    import feedback_nlp as fb
    from conftest import HashEmbedder
    from feedback_nlp.service import ServiceConfig, create_app, create_key
    from feedback_nlp.service._state import ServiceState

    emb = HashEmbedder()
    fb.TagClassifier(emb).fit(["export fails", "csv broken", "dark mode", "dark theme"] * 2,
                              ["bug", "bug", "feature", "feature"] * 2).save(folder / "m")
    cfg = ServiceConfig(data_dir=folder / "data", models={"t": str(folder / "m")}, sentiment=None, **config)
    state = ServiceState(cfg, embedder=emb)
    client = TestClient(create_app(cfg, state=state), raise_server_exceptions=False)
    client.__enter__()
    deadline = time.monotonic() + 60
    while not state.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    keys = {scope: create_key(state.store, f"k-{scope}", scope)[0] for scope in ("tag", "write", "admin")}
    return client, state, keys


@pytest.fixture(scope="module")
def cors(tmp_path_factory):
    """A TestClient of the service with CORS on for one origin, and one key per scope."""
    client, state, keys = _client(tmp_path_factory.mktemp("svc17b-cors"), cors_origins=("https://app.example.com",))
    yield client, state, keys
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A TestClient of the service (no CORS), and one key per scope."""
    client, state, keys = _client(tmp_path_factory.mktemp("svc17b"))
    yield client, state, keys
    client.__exit__(None, None, None)


def _auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "content-type": "application/json", **headers}


def _series(client, keys) -> list[str]:
    text = client.get("/metrics", headers=_auth(keys["admin"])).text
    return [line for line in text.splitlines() if line.startswith("feedback_nlp_requests_total{")]


def test_a_cors_preflight_puts_no_path_it_was_sent_into_the_metrics(cors, caplog):
    client, _, keys = cors
    caplog.set_level("INFO", logger="feedback_nlp.service")
    for path in ("/v1/backlog/ann@example.com", "/made/up/path-1", "/made/up/path-2"):
        r = client.options(path, headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
        assert r.status_code == 200  # the browser's preflight is still answered
    series = _series(client, keys)
    assert not any("ann@example.com" in s or "/made/up" in s for s in series), series
    assert any('method="OPTIONS",route="unmatched",status="200"' in s for s in series)
    assert "ann@example.com" not in caplog.text and "/made/up" not in caplog.text


def test_a_trailing_slash_redirect_is_counted_without_its_path(keyed):
    client, _, keys = keyed
    r = client.get("/v1/models/", headers=_auth(keys["tag"]), follow_redirects=False)
    assert r.status_code == 307
    assert client.get("/openapi.json").status_code == 200
    series = _series(client, keys)
    assert not any('route="/v1/models/"' in s for s in series), series
    assert any('route="/openapi.json",status="200"' in s for s in series), series  # the app's own paths keep theirs
