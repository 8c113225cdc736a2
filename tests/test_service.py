"""End-to-end tests of `feedback-nlp serve`: a real server process per store (SQLite, PostgreSQL), called over
loopback HTTP; one process per store for the whole module keeps the suite fast."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import numpy as np
import pytest

import feedback_nlp as fb
from _service_support import ROOT, Server, httpx, make_key, postgres_url

LIMITS = ("--max-items", "8", "--max-text-chars", "500", "--max-body-bytes", "20000", "--max-k", "10")
SECRET = "Zanzibar-marmalade-7731"  # a text marker that must never reach a log
EMAIL = "carol.secret@example.org"


@pytest.fixture(scope="module")
def theme_dir(tmp_path_factory, sample, embedder):
    texts = sample["text"].tolist()[:400]
    model = fb.ThemeModel(embedder, min_theme_size=10).fit(texts, embeddings=embedder.encode(texts))
    return model.save(tmp_path_factory.mktemp("themes") / "model")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def svc(request, tmp_path_factory, theme_dir):
    data = tmp_path_factory.mktemp(f"serve-{request.param}") / "data"
    url = postgres_url() if request.param == "postgresql" else None
    keys = {scope: make_key(scope, data=data, url=url) for scope in ("tag", "write", "admin")}
    server = Server(data, url=url, args=(*LIMITS, "--themes", str(theme_dir))).start()
    server.keys = keys
    yield server
    assert server.stop() == 0, server.log_text()[-2000:]


def _no_leak(r: httpx.Response) -> None:
    assert "Traceback" not in r.text and "File \"" not in r.text
    assert r.headers["content-type"].startswith("application/json")


def test_health_ready_and_openapi_need_no_key(svc):
    with svc.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"ready": True}
        spec = c.get("/openapi.json").json()
    assert {"/v1/tag", "/v1/backlog", "/v1/duplicates", "/v1/themes/assign", "/v1/score/rice"} <= set(spec["paths"])
    assert svc.saw_not_ready, "/readyz was never false while the models loaded"


def test_auth_is_required_and_checked(svc):
    body = {"items": [{"id": "1", "text": "Export fails"}]}
    with svc.client() as c:
        r = c.post("/v1/tag", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        _no_leak(r)
        assert c.post("/v1/tag", json=body, headers={"Authorization": "Bearer fnlp_wrong"}).status_code == 401
        assert c.post("/v1/tag", json=body, headers={"Authorization": f"Basic {svc.keys['tag']}"}).status_code == 401
        assert c.get("/v1/models").status_code == 401
        # a malformed body does not tell a caller without a key anything about the API
        r = c.post("/v1/tag", content=b'{"items": [', headers={"content-type": "application/json"})
        assert r.status_code == 401 and "details" not in r.json()["error"]
    # a key revoked in the store stops working (looked up for the first time after the revocation)
    from feedback_nlp.service import open_store

    token = make_key("admin", data=svc.data, url=svc.url_store, name="to-revoke")
    store = open_store(svc.data, svc.url_store)
    try:
        key_id = next(k.key_id for k in store.list_keys() if k.name == "to-revoke")
        assert store.revoke_key(key_id)
        assert all(k.key_hash != token and token not in k.key_hash for k in store.list_keys())  # hashes only
    finally:
        store.close()
    with svc.client(token) as c:
        assert c.post("/v1/tag", json=body).status_code == 401
    with svc.client(svc.keys["tag"]) as c:
        assert c.post("/v1/tag", json=body).status_code == 200


def test_scopes(svc):
    item = {"items": [{"id": "scope-1", "text": "Please support SSO with Okta"}]}
    with svc.client(svc.keys["tag"]) as c:
        for r in (c.post("/v1/backlog", json=item), c.delete("/v1/backlog/scope-1"), c.get("/metrics")):
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with svc.client(svc.keys["write"]) as c:
        assert c.post("/v1/backlog", json=item).status_code == 200
        assert c.get("/metrics").status_code == 403
        assert c.delete("/v1/backlog/scope-1").status_code == 204
    with svc.client(svc.keys["admin"]) as c:
        text = c.get("/metrics").text
    for name in ("feedback_nlp_requests_total", "feedback_nlp_request_seconds_bucket", "feedback_nlp_embed_batch_texts",
                 "feedback_nlp_embed_queue_depth", "feedback_nlp_backlog_items"):
        assert name in text


def test_limits_and_bad_input_give_json_errors_naming_the_limit_or_field(svc):
    with svc.client(svc.keys["write"]) as c:
        r = c.post("/v1/tag", json={"items": [{"id": "1", "text": "x" * 30_000}]})
        assert r.status_code == 413 and r.json()["error"]["limit"] == "max_body_bytes"
        _no_leak(r)
        # a chunked body (no Content-Length) is counted as it arrives
        r = c.post("/v1/tag", content=iter([b'{"items": [', b" " * 25_000, b"]}"]),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["max"] == 20_000
        r = c.post("/v1/tag", json={"items": [{"id": str(i), "text": "Export fails"} for i in range(9)]})
        assert r.status_code == 413 and r.json()["error"]["limit"] == "max_items"
        r = c.post("/v1/backlog", json={"items": [{"id": "a", "text": "fine"}, {"id": "b", "text": "long " * 150}]})
        err = r.json()["error"]
        assert r.status_code == 422 and err["limit"] == "max_text_chars" and err["details"][0]["loc"] == "body.items[1].text"
        r = c.post("/v1/duplicates", json={"items": [{"text": "Export fails"}], "k": 11})
        assert r.status_code == 422 and r.json()["error"]["limit"] == "max_k"
        r = c.post("/v1/tag", content=b'{"items": [', headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["type"] == "json_invalid"
        r = c.post("/v1/tag", json={"items": [{"id": "1", "text": 42}]})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == "body.items[0].text"
        r = c.post("/v1/tag", json={"items": [{"id": "1"}]})
        assert r.json()["error"]["details"][0]["loc"] == "body.items[0].text"
        r = c.post("/v1/tag", json={"items": [{"id": "1", "text": "ok", "txet": "typo"}]})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == "body.items[0].txet"
        r = c.post("/v1/tag", json={"items": []})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == "body.items"
        r = c.post("/v1/tag", json={"items": [{"id": "1", "text": "<p> </p>"}, {"id": "2", "text": "\x00\x01\x02"}]})
        assert r.status_code == 422 and [d["loc"] for d in r.json()["error"]["details"]] == [
            "body.items[0].text", "body.items[1].text"]
        # a rejected input is not echoed back: it may be PII
        r = c.post("/v1/tag", json={"items": [{"id": "1", "text": {"secret": EMAIL}}]})
        assert r.status_code == 422 and EMAIL not in r.text
        assert c.get("/v1/nothing-here").json()["error"]["code"] == "not_found"
        assert c.put("/v1/tag").json()["error"]["code"] == "method_not_allowed"


def test_tag_batches_concurrent_requests_without_mixing_them_up(svc):
    texts = [f"{t} (ticket {i})" for i, t in enumerate(
        ["The app crashes when I export a report", "Please add a dark mode", "How do I reset my password?",
         "Billing charged us twice this month", "Search is very slow since the update", "Add an API for exports",
         "I love the new dashboard", "Login with Google fails"] * 3)]
    with svc.client(svc.keys["tag"]) as c:
        alone = [c.post("/v1/tag", json={"items": [{"id": str(i), "text": t}]}).json()["results"][0]
                 for i, t in enumerate(texts)]
        with ThreadPoolExecutor(12) as pool:
            together = list(pool.map(lambda it: c.post("/v1/tag", json={"items": [{"id": str(it[0]), "text": it[1]}]})
                                     .json()["results"][0], enumerate(texts)))
        models = c.get("/v1/models").json()
        assert c.post("/v1/tag", json={"items": [{"id": "1", "text": "x y"}], "model": "nope"}).status_code == 404
    assert [a["id"] for a in alone] == [b["id"] for b in together] == [str(i) for i in range(len(texts))]
    for a, b in zip(alone, together):
        assert a["tags"] == b["tags"] and a["confidence"] == pytest.approx(b["confidence"], abs=1e-3)
    classes = set(models["models"][0]["tags"])
    assert all(set(a["tags"]) <= classes and a["tags"] for a in alone if not a["needs_review"])
    assert models["limits"]["max_items"] == 8
    assert alone[0]["tags"] == ["bug"] and alone[1]["tags"] == ["feature_request"]


def test_sentiment_matches_the_bundled_model(svc, embedder):
    texts = ["I love the new dashboard, great work!", "The app keeps crashing and support never answers.",
             "The export button is in the settings menu."]
    with svc.client(svc.keys["tag"]) as c:
        r = c.post("/v1/sentiment", json={"items": [{"id": str(i), "text": t} for i, t in enumerate(texts)]})
    assert r.status_code == 200, r.text
    expected = fb.TagClassifier.load("sentiment", embedder=embedder).tag(texts)
    got = r.json()["results"]
    assert [g["id"] for g in got] == ["0", "1", "2"] and r.json()["model"] == "sentiment"
    for g, (tags, conf) in zip(got, zip(expected["tags"], expected["confidence"])):
        assert g["sentiment"] == (tags[0] if tags else None)
        assert g["confidence"] == pytest.approx(float(conf), abs=1e-3)
    assert got[0]["sentiment"] == "positive" and got[1]["sentiment"] == "negative"


def test_backlog_add_update_search_delete(svc):
    items = [{"id": "bl-1", "text": f"Please add a dark mode to the mobile app, call me at +1 415 555 0100 or {EMAIL}",
              "metadata": {"account": "acme", "votes": 3}},
             {"id": "bl-2", "text": "Exporting invoices to CSV cuts off long descriptions"},
             {"id": "bl-3", "text": "SSO login with Okta fails with error 500"}]
    with svc.client(svc.keys["write"]) as c:
        r = c.post("/v1/backlog", json={"items": items})
        assert r.status_code == 200 and set(r.json()["created"]) >= {"bl-1", "bl-2", "bl-3"}
        stored = c.get("/v1/backlog/bl-1").json()
        assert EMAIL not in stored["text"] and "555 0100" not in stored["text"] and "dark mode" in stored["text"]
        assert stored["metadata"] == {"account": "acme", "votes": 3}
        r = c.post("/v1/backlog", json={"items": [{"id": "bl-2", "text": "CSV export truncates descriptions"}]})
        assert r.json()["updated"] == ["bl-2"] and r.json()["created"] == []
        assert c.get("/v1/backlog/bl-2").json()["text"] == "CSV export truncates descriptions"
        r = c.post("/v1/duplicates", json={"items": [{"text": "CSV export truncates descriptions"},
                                                     {"id": "bl-3", "text": "SSO login with Okta fails with error 500"}],
                                           "k": 3})
        first, second = r.json()["results"]
        assert first["matches"][0]["id"] == "bl-2" and first["matches"][0]["duplicate"] is True
        assert first["matches"][0]["score"] > 0.99
        assert "bl-3" not in [m["id"] for m in second["matches"]]  # an item is not its own duplicate
        assert all(a["score"] >= b["score"] for a, b in zip(first["matches"], first["matches"][1:]))
        r = c.post("/v1/backlog", json={"items": [{"id": "d", "text": "one"}, {"id": "d", "text": "two"}]})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == "body.items[1].id"
        slash = {"id": "https://hub.example/posts/42?x=1", "text": "Ticket ids may be URLs with slashes"}
        assert c.post("/v1/backlog", json={"items": [slash]}).status_code == 200
        assert c.get(f"/v1/backlog/{quote(slash['id'], safe='')}").json()["id"] == slash["id"]
        assert c.delete(f"/v1/backlog/{quote(slash['id'], safe='')}").status_code == 204
        assert c.delete("/v1/backlog/bl-2").status_code == 204
        assert c.get("/v1/backlog/bl-2").status_code == 404
        assert c.delete("/v1/backlog/bl-2").status_code == 404
        r = c.post("/v1/duplicates", json={"items": [{"text": "CSV export truncates descriptions"}], "k": 5})
        assert "bl-2" not in [m["id"] for m in r.json()["results"][0]["matches"]]


def test_themes(svc, theme_dir):
    model = fb.ThemeModel.load(theme_dir)
    with svc.client(svc.keys["tag"]) as c:
        themes = c.get("/v1/themes").json()["themes"]
        rep = model.themes_.iloc[0]
        r = c.post("/v1/themes/assign", json={"items": [{"id": "t1", "text": rep["representatives"][0]}]})
    assert [t["id"] for t in themes] == model.themes_["id"].astype(int).tolist()
    assert r.json()["results"][0] == {"id": "t1", "theme": int(rep["id"]), "label": rep["label"]}


def test_scores_match_the_library(svc):
    with svc.client(svc.keys["tag"]) as c:
        r = c.post("/v1/score/rice", json={"items": [{"id": "a", "reach": 400, "impact": 2, "confidence": 0.8,
                                                      "effort": 4}]})
        assert r.json()["results"] == [{"id": "a", "score": fb.rice(400, 2, 0.8, 4), "category": None}]
        r = c.post("/v1/score/ice", json={"items": [{"id": "a", "impact": 8, "confidence": 7, "ease": 6}]})
        assert r.json()["results"][0]["score"] == fb.ice(8, 7, 6)
        r = c.post("/v1/score/moscow", json={"items": [{"id": str(i), "score": s, "commitment": i == 0}
                                                       for i, s in enumerate([1, 90, 50, 10])]})
        expected = fb.moscow(np.array([1.0, 90, 50, 10]), commitment=np.array([True, False, False, False]),
                             deadline=np.zeros(4, bool))
        assert [x["category"] for x in r.json()["results"]] == [str(x) for x in expected]
        rows = [{"id": str(i), "theme": th, "account_id": acc, "account_revenue": rev}
                for i, (th, acc, rev) in enumerate([("sso", "a1", 100.0), ("sso", "a2", 50.0), ("csv", "a1", 100.0)])]
        r = c.post("/v1/score/demand", json={"items": rows})
        got = {x["theme"]: x for x in r.json()["results"]}
        assert got["sso"]["volume"] == 2 and got["sso"]["unique_accounts"] == 2 and got["sso"]["revenue"] == 150
        r = c.post("/v1/score/rice", json={"items": [{"id": "a", "reach": 1, "impact": 2, "confidence": 0.5,
                                                      "effort": 0}]})
        assert r.status_code == 422 and "effort" in r.json()["error"]["message"]
        _no_leak(r)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_docs_curl_examples_run(svc):
    """Every ```bash block of docs/serve.md runs as written against this module's server."""
    import os
    import re

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "serve.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 5
    outputs = []
    for block in blocks:
        res = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block.replace("http://127.0.0.1:8080", svc.base)],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "KEY": svc.keys["write"]})
        assert res.returncode == 0, block + res.stdout + res.stderr
        outputs.append(res.stdout)
    assert '"id":"T-1","tags":["bug"]' in outputs[0] and '"id":"T-4","sentiment":"negative"' in outputs[1]
    assert '"text":"Dark mode for the mobile app, reply to <EMAIL>"' in outputs[2]
    assert '"matches":[{"id":"B-2"' in outputs[2]
    assert '"framework":"rice","results":[{"id":"dark-mode","score":160.0' in outputs[3]
    assert '"loc":"body.items[0].text"' in outputs[4]


def test_cors_is_off_by_default(svc):
    with svc.client(svc.keys["tag"]) as c:
        pre = c.options("/v1/tag", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        r = c.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in pre.headers and "access-control-allow-origin" not in r.headers


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_client_checks_the_response_against_openapi(svc):
    res = subprocess.run(["node", str(ROOT / "tests" / "node" / "tag_client.mjs"), svc.base, svc.keys["tag"]],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok: /v1/tag response matches TagResponse" in res.stdout


def test_logs_hold_no_texts_no_pii_no_tracebacks(svc):
    with svc.client(svc.keys["write"]) as c:
        c.post("/v1/tag", json={"items": [{"id": "leak-1", "text": f"{SECRET} from {EMAIL}"}]})
        c.post("/v1/backlog", json={"items": [{"id": "leak-2", "text": f"{SECRET} {EMAIL}"}]})
        c.post("/v1/tag", json={"items": [{"id": "leak-3", "text": SECRET * 100}]})
    log = svc.log_text()
    assert "POST /v1/tag 200" in log and "rid=" in log  # the access log is on (-v) and was checked
    for needle in (SECRET, EMAIL, "Traceback", svc.keys["write"]):
        assert needle not in log


def test_default_bind_is_loopback():
    from feedback_nlp.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.cors_origin is None


def test_keys_cli_prints_the_key_once_and_stores_its_hash(tmp_path):
    env_cmd = ["-m", "feedback_nlp.cli", "keys"]
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, *env_cmd, "create", "--data", str(tmp_path), "--name", "bot", "--scope",
                          "write"], capture_output=True, text=True, env=env, timeout=120)
    token = res.stdout.strip()
    assert res.returncode == 0 and token.startswith("fnlp_") and len(token) > 40
    listed = subprocess.run([sys.executable, *env_cmd, "list", "--data", str(tmp_path)], capture_output=True,
                            text=True, env=env, timeout=120)
    assert "bot" in listed.stdout and "write" in listed.stdout and token not in listed.stdout
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("backlog.sqlite*"))
    assert token.encode() not in raw
    bad = subprocess.run([sys.executable, *env_cmd, "create", "--data", str(tmp_path), "--name", "x", "--scope",
                          "root"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
