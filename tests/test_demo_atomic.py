"""`feedback-nlp demo` writes all of its outputs or none of them."""

from __future__ import annotations

import pytest

from feedback_nlp import demo, report
from feedback_nlp.datasets import load_sample


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    """Every 8th sample row (still both sides of July) and no bundled model (built on the real embedder)."""
    part = load_sample().iloc[::8].reset_index(drop=True)
    monkeypatch.setattr(demo, "load_sample", lambda: part)
    monkeypatch.setattr(demo, "bundled_models", lambda: [])


def test_failed_demo_leaves_no_partial_outputs(tmp_path, hash_embedder, monkeypatch, capsys):
    def broken_report(*args, **kwargs):
        raise RuntimeError("report failed half-way")

    monkeypatch.setattr(report, "build_report", broken_report)
    out = tmp_path / "demo"
    with pytest.raises(RuntimeError, match="half-way"):
        demo.run(out_dir=out, embedder=hash_embedder, n_examples=1)
    # the four tables were written before the report failed: none of them, nor their temp files, remain
    assert not out.exists() or list(out.iterdir()) == []
    assert [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")] == []


def test_failed_demo_keeps_the_previous_outputs(tmp_path, hash_embedder, monkeypatch, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "tagged.csv").write_text("id,tags\nold,kept\n")

    def broken_report(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "build_report", broken_report)
    with pytest.raises(KeyboardInterrupt):
        demo.run(out_dir=out, embedder=hash_embedder, n_examples=1)
    assert sorted(p.name for p in out.iterdir()) == ["tagged.csv"]
    assert (out / "tagged.csv").read_text() == "id,tags\nold,kept\n"
