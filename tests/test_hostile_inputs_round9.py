"""Ninth round (lead): what the last round noticed and left alone, and odd use found since. Each test fails
without its fix."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

import feedback_nlp as fb
from feedback_nlp._lock import JobLock, output_lock
from feedback_nlp.cli import main
from feedback_nlp.errors import JobLockedError, UsageError

TEXTS = ["export to csv fails"] * 6 + ["dark mode please add"] * 6 + ["login loop on sso"] * 6
TAX = [{"id": "bug", "name": "Bug"}, {"id": "feature", "name": "Feature"}]


def test_build_report_from_python_takes_the_output_lock(tmp_path, hash_embedder):
    # the CLI's report was locked, build_report called from a script or a scheduler's two workers was not:
    # their renames could interleave, one run's tables beside the other's page
    out = tmp_path / "r"
    with JobLock(tmp_path / "r.lock"), pytest.raises(JobLockedError, match="another run is already writing"):
        fb.build_report(pd.DataFrame({"text": TEXTS}), out, taxonomy=fb.Taxonomy(TAX), embedder=hash_embedder,
                        min_theme_size=2, sentiment=None)
    assert not out.exists()
    summary = fb.build_report(pd.DataFrame({"text": TEXTS}), out, taxonomy=fb.Taxonomy(TAX),
                              embedder=hash_embedder, min_theme_size=2, sentiment=None)
    assert summary.html.exists() and not (tmp_path / "r.lock").exists()


def test_build_report_refuses_a_lock_over_its_own_input(tmp_path, hash_embedder):
    src = tmp_path / "r.lock"  # the backlog's name is the report folder's lock: taking it would overwrite it
    pd.DataFrame({"text": TEXTS}).to_csv(src, index=False)
    before = src.read_bytes()
    with pytest.raises(UsageError, match="lock file .* is the source file"):
        fb.build_report(src, tmp_path / "r", format="csv", taxonomy=fb.Taxonomy(TAX), embedder=hash_embedder)
    assert src.read_bytes() == before


def test_the_cli_report_inside_its_own_lock_runs(tmp_path, hashed_cli, capsys):
    # the CLI holds <out>.lock for the run, and build_report inside it takes the same one: not refused
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": range(18), "text": TEXTS}).to_csv(src, index=False)
    tax = tmp_path / "tax.json"
    fb.Taxonomy(TAX).save(tax)
    code = main(["report", "--in", str(src), "--out", str(tmp_path / "rep"), "--taxonomy", str(tax),
                 "--min-theme-size", "2", "--sentiment-model", "none"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "rep" / "report.html").exists() and not (tmp_path / "rep.lock").exists()


def test_an_output_lock_held_by_another_thread_is_not_shared(tmp_path):
    # nesting is allowed within one thread (the CLI around build_report); another thread is another run
    out = tmp_path / "o"
    seen: list[BaseException] = []
    with output_lock(out), output_lock(out):  # the inner one is a no-op
        def other() -> None:
            try:
                with output_lock(out):
                    pass
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread's assert
                seen.append(exc)
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert (tmp_path / "o.lock").exists()
    assert len(seen) == 1 and isinstance(seen[0], JobLockedError)
    assert not (tmp_path / "o.lock").exists()
