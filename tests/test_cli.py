import json

import pandas as pd
import pytest

from feedback_nlp.cli import main
from feedback_nlp.datasets import sample_path, sample_taxonomy_path


@pytest.fixture(autouse=True)
def _cache(monkeypatch, cache_path, embedder, sample_vectors):
    # the session fixtures embedded the sample once; the CLI reuses that cache
    monkeypatch.setenv("FEEDBACK_NLP_CACHE", str(cache_path))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    df = pd.read_csv(sample_path(), dtype=str, keep_default_na=False).iloc[::3]
    path = tmp_path_factory.mktemp("cli") / "small.csv"
    df.to_csv(path, index=False)
    return path


def test_train_eval_tag(small, tmp_path, capsys):
    model = tmp_path / "m"
    assert main(["train", "--data", str(small), "--label-col", "product_area", "--multi-label", "--sep", "|",
                 "--taxonomy", str(sample_taxonomy_path()), "--out", str(model)]) == 0
    card = (model / "README.md").read_text()
    assert "micro_f1" in card and "held-out stratified 20%" in card
    capsys.readouterr()
    assert main(["eval", "--model", str(model), "--data", str(small), "--label-col", "product_area", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "micro_f1", "macro_f1", "per_tag"} <= set(report) and report["micro_f1"] > 0.8
    out = tmp_path / "tagged.csv"
    assert main(["tag", "--model", str(model), "--in", str(small), "--out", str(out)]) == 0
    tagged = pd.read_csv(out)
    assert len(tagged) == 1000 and tagged["tags"].str.contains("product_area").all()
    assert "rows in: 1000 = tagged: 1000 + errors: 0" in capsys.readouterr().out


def test_train_errors_are_one_line(small, tmp_path, capsys):
    assert main(["train", "--data", str(small), "--label-col", "nope", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: column 'nope' (given by --label-col) not found") and "product_area" in err
    assert main(["tag", "--model", str(tmp_path / "missing"), "--in", str(small), "--out", str(tmp_path / "o.csv")]) == 2
    assert "no tag model" in capsys.readouterr().err


def test_dedupe_and_themes(small, tmp_path, capsys):
    assert main(["dedupe", "--in", str(small), "--out", str(tmp_path / "groups.csv"), "--threshold", "0.95"]) == 0
    groups = pd.read_csv(tmp_path / "groups.csv")
    assert groups.groupby("group")["is_representative"].sum().eq(1).all()
    new = tmp_path / "new.csv"
    pd.DataFrame({"id": ["n1"], "text": ["Please add a Microsoft Teams integration"]}).to_csv(new, index=False)
    assert main(["dedupe", "--in", str(new), "--against", str(small), "--out", str(tmp_path / "m.csv")]) == 0
    matches = pd.read_csv(tmp_path / "m.csv")
    assert (matches["query_id"] == "n1").all() and matches["match_text"].str.contains("Teams").all()
    assert main(["themes", "--in", str(small), "--out", str(tmp_path / "th")]) == 0
    for f in ("themes.csv", "assignments.csv", "trends.csv"):
        assert (tmp_path / "th" / f).exists()
    assert len(pd.read_csv(tmp_path / "th" / "assignments.csv")) == 1000


def test_score_cli(tmp_path, capsys):
    src = tmp_path / "opps.csv"
    pd.DataFrame({"id": ["a", "b"], "reach": [100, 300], "impact": [2, 1], "confidence": [0.8, 0.5],
                  "effort": [2, 1], "ease": [5, 9], "score": [3.0, 9.0]}).to_csv(src, index=False)
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "r.csv"), "--framework", "rice"]) == 0
    assert pd.read_csv(tmp_path / "r.csv")["rice"].tolist() == [150.0, 80.0]
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "i.csv"), "--framework", "ice",
                 "--confidence-col", "ease"]) == 0
    assert pd.read_csv(tmp_path / "i.csv")["ice"].tolist() == [81.0, 50.0]
    assert main(["score", "--in", str(src), "--out", str(tmp_path / "mo.csv"), "--framework", "moscow",
                 "--cutoffs", "8,4,2"]) == 0
    assert pd.read_csv(tmp_path / "mo.csv")["moscow"].tolist() == ["could", "must"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"reach": [1], "impact": [1], "confidence": [0.5], "effort": [0]}).to_csv(bad, index=False)
    capsys.readouterr()
    assert main(["score", "--in", str(bad), "--out", str(tmp_path / "x.csv"), "--framework", "rice"]) == 1
    assert "effort must be > 0" in capsys.readouterr().err


def test_score_demand_on_themes(small, tmp_path):
    assert main(["themes", "--in", str(small), "--out", str(tmp_path / "th")]) == 0
    items = pd.read_csv(small).merge(pd.read_csv(tmp_path / "th" / "assignments.csv"), on="id")
    items.to_csv(tmp_path / "items.csv", index=False)
    assert main(["score", "--in", str(tmp_path / "items.csv"), "--out", str(tmp_path / "d.csv"),
                 "--framework", "demand", "--group-col", "theme_label"]) == 0
    d = pd.read_csv(tmp_path / "d.csv")
    assert d["priority"].is_monotonic_decreasing and d["revenue"].gt(0).all()


def test_dedupe_streams_and_reports_rejects(tmp_path, capsys):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["Export to CSV fails", "", "export to csv is failing", "x\x00\x01\x02\x03"]}).to_csv(src, index=False)
    assert main(["dedupe", "--in", str(src), "--out", str(tmp_path / "g.csv"), "--threshold", "0.7", "--chunk-size", "2"]) == 0
    assert "rows in: 4 = used: 2 + errors: 2" in capsys.readouterr().out
    assert main(["dedupe", "--in", str(src), "--out", str(tmp_path / "j.csv"), "--threshold", "0.7", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_in"], summary["rows_out"], summary["rows_rejected"]) == (4, 2, 2)
    assert summary["outputs"] == {"output": str(tmp_path / "j.csv"), "errors": str(tmp_path / "j.errors.csv")}
    assert summary["embedding_model"].startswith("all-MiniLM-L6-v2@")
    errors = pd.read_csv(tmp_path / "g.errors.csv")
    assert sorted(errors["id"]) == ["b", "d"]
    groups = pd.read_csv(tmp_path / "g.csv")
    assert sorted(groups["id"]) == ["a", "c"]


def test_backends_command_prints_measurement(monkeypatch, capsys):
    import feedback_nlp.backends as be
    from feedback_nlp.backends import Calibration, CalibrationRow

    rows = [CalibrationRow("torch", 500.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, True),
            CalibrationRow("torch-bf16", 950.0, 1.9, 1.8, 2.0, 0.9999, 0.999, 0.997, 0.3, True)]
    seen = {}

    def fake(model, repeats):
        seen.update(model=model, repeats=repeats)
        return Calibration("torch-bf16", rows, "key", 4.2, True, "torch-bf16 ran 1.80-2.00x fp32")

    monkeypatch.setattr(be, "calibrate_backends", fake)
    assert main(["backends", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "torch-bf16" in out and "950" in out and "auto now uses torch-bf16" in out
    assert seen == {"model": None, "repeats": 3}
    assert main(["backends", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["choice"] == "torch-bf16"
    # a noisy machine: the command says nothing was stored and why
    monkeypatch.setattr(be, "calibrate_backends", lambda model, repeats: Calibration(
        "torch", rows, "key", 4.2, False, "machine too noisy to tell: torch-bf16 ran 0.60-1.90x fp32"))
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "stored nothing: machine too noisy" in out and "auto keeps using torch" in out


def test_every_backend_is_accepted_by_the_cli(tmp_path):
    from feedback_nlp.backends import BACKENDS
    from feedback_nlp.cli import build_parser

    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,hello\n")
    for backend in BACKENDS:
        args = build_parser().parse_args(["themes", "--in", str(src), "--out", "o", "--backend", backend])
        assert args.backend == backend
        args = build_parser().parse_args(["tag", "--model", "m", "--in", str(src), "--out", "o.csv", "--backend", backend])
        assert args.backend == backend


def test_train_no_lexical_flag(small, tmp_path):
    with_words, without = tmp_path / "w", tmp_path / "n"
    assert main(["train", "--data", str(small), "--label-col", "request_type", "--holdout", "0",
                 "--out", str(with_words)]) == 0
    assert main(["train", "--data", str(small), "--label-col", "request_type", "--holdout", "0", "--no-lexical",
                 "--out", str(without)]) == 0
    on = json.loads((with_words / "config.json").read_text())
    off = json.loads((without / "config.json").read_text())
    assert on["params"]["lexical"] is True and off["params"]["lexical"] is False
    with __import__("numpy").load(without / "weights.npz") as z:
        assert not any(k.startswith("lexical_") for k in z.files)
