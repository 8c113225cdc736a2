"""Round 13e: do the docs tell the truth? Claims of README.md and docs/*.md checked against the code.

tests/test_docs.py runs every code block; these tests check the prose: the options, defaults, variables,
routes, public names and result files the pages name exist and say what the code does. Each test that guards
a fix failed before it (the docstring says what was false). No model is loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
from pathlib import Path

import pytest

import feedback_nlp as fb
from feedback_nlp import _config
from feedback_nlp.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
USER_PAGES = [p for p in PAGES if p.name != "benchmarks.md"]  # benchmarks.md names the scripts' own flags
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _text(pages: list[Path]) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser of the command line by its command path: '' (the top level), 'tag', 'keys create', ..."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        found[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}".strip())

    walk(build_parser(), "")
    return found


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))]


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    return " ".join(parser._get_formatter()._expand_help(action).split())


def _has_default(action: argparse.Action) -> bool:
    d = action.default
    return not (action.required or d is None or d is False or d in ("", argparse.SUPPRESS))


# --- --help: every option's default, once, and never a contradiction ----------------------------------------

def test_help_states_each_default_once_and_never_none():
    """``--help`` appended argparse's ``(default: ...)`` to helps that already named their default:
    ``report --model``: "(default: request-type) (default: None)", ``train --head``: "logreg (default) ...
    (default: None)", ``--backend``: "(default: auto, ...) (default: None)", and "(default: None)" or
    "(default: False)" beside every required option and flag (78 option helps of 9 commands). Now a help names its
    default once, and only a real one."""
    bad = []
    for path, parser in _parsers().items():
        for action in _options(parser):
            text = _help(parser, action)
            if text.count("(default") > 1 or re.search(r"\(default: (None|False|)\)", text):
                bad.append(f"{path} {action.option_strings[-1]}: {text}")
    assert not bad, "\n".join(bad)


def test_help_states_every_real_default():
    """docs/cli.md: "`feedback-nlp COMMAND --help` describes every option (with its default)". The Quackback
    options of ``serve`` (``--quackback-min-confidence`` 0.5, ``--quackback-duplicate-threshold`` 0.9,
    ``--quackback-replay-window`` 300, ``--quackback-respond-within`` 2) and ``quackback pull --limit`` (100)
    showed none; docs/quackback.md had to be read for them."""
    bad = []
    for path, parser in _parsers().items():
        for action in _options(parser):
            if _has_default(action) and "default" not in _help(parser, action):
                bad.append(f"{path} {action.option_strings[-1]} (default {action.default!r})")
    assert not bad, "\n".join(bad)


def test_the_defaults_the_help_prints_are_the_parsers():
    """A default written into a help by hand ("(default: 8080)") must be the one the parser uses."""
    bad = []
    for path, parser in _parsers().items():
        for action in _options(parser):
            m = re.search(r"\(default: ([^)]*)\)", _help(parser, action))
            if m and _has_default(action) and isinstance(action.default, (int, float, str)):
                said = m.group(1).split(",")[0].split(";")[0].strip()
                if re.fullmatch(r"[\w.|-]+", said) and said not in (str(action.default), f"{action.default:g}"
                                                                    if isinstance(action.default, float) else ""):
                    bad.append(f"{path} {action.option_strings[-1]}: help says {said}, parser {action.default!r}")
    assert not bad, "\n".join(bad)


# --- every option the pages name exists, on the command they name -------------------------------------------

def test_every_option_the_docs_name_exists():
    known = {flag for parser in _parsers().values() for a in parser._actions for flag in a.option_strings}
    outside = {"--index-url", "--fail-with-body", "--duration", "--soak-minutes"}  # pip, curl, benchmarks/serve.py
    outside |= {"--mod"}  # cli.md's example of an abbreviation, which the CLI refuses (round 17f)
    named = {(p.name, f) for p in USER_PAGES for f in FLAG.findall(p.read_text(encoding="utf-8"))}
    assert not sorted((page, f) for page, f in named if f not in known | outside)


def test_every_option_in_a_quoted_command_belongs_to_that_command():
    """`feedback-nlp tag --in ... --resume` in a page: each option is one of ``tag``'s (or a global one)."""
    parsers = _parsers()
    flags = {path: {f for a in p._actions for f in a.option_strings} for path, p in parsers.items()}
    bad, seen = [], 0
    for page in USER_PAGES:
        text = page.read_text(encoding="utf-8")
        lines = re.findall(r"`([^`\n]*feedback-nlp [^`\n]*)`", text)
        lines += [line for line in text.splitlines() if "feedback-nlp " in line and "`" not in line]
        for line in lines:
            m = re.search(r"feedback-nlp((?: [a-z]+)+)", line)
            path = ""
            for word in (m.group(1).split() if m else []):
                if f"{path} {word}".strip() not in parsers:
                    break
                path = f"{path} {word}".strip()
            if not path:
                continue
            seen += 1
            call = re.split(r"\||;|&&|#", line[m.start():])[0] if m else ""
            bad += [f"{page.name}: {f} is not an option of '{path}': {line.strip()}"
                    for f in FLAG.findall(call) if f not in flags[path] | flags[""]]
    assert seen > 40 and not bad, "\n".join(bad)


# --- defaults quoted in the pages' tables -------------------------------------------------------------------

def test_serve_options_table_matches_the_parser():
    """docs/serve.md's table of `serve` options and their defaults against the parser."""
    serve = _parsers()["serve"]
    default = {f: a.default for a in serve._actions for f in a.option_strings}
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    assert "| `--data DIR` | `feedback-nlp-data` |" in text and default["--data"] == "feedback-nlp-data"
    assert "| `--host`, `--port` | `127.0.0.1`, `8080` |" in text and (default["--host"], default["--port"]) == (
        "127.0.0.1", 8080)
    assert "| 1 MiB / 256 / 20,000 / 100 |" in text
    assert [default[f] for f in ("--max-body-bytes", "--max-items", "--max-text-chars", "--max-k")] == [
        2**20, 256, 20_000, 100]
    assert "| 64 / 2 |" in text and (default["--max-batch"], default["--max-wait-ms"]) == (64, 2.0)
    assert "| `--graceful-timeout S` | 30 |" in text and default["--graceful-timeout"] == 30.0
    assert "| `--sentiment DIR` | the bundled `sentiment` model |" in text and default["--sentiment"] == "sentiment"
    assert _parsers()["keys create"].get_default("scope") == "tag"


def test_quackback_options_table_matches_the_parser():
    serve = _parsers()["serve"]
    text = (ROOT / "docs" / "quackback.md").read_text(encoding="utf-8")
    for flag, value in re.findall(r"\| `(--quackback-[a-z-]+) ([\d.]+)` \|", text):
        action = next(a for a in serve._actions if flag in a.option_strings)
        assert float(value) == action.default, flag


def test_shared_defaults_quoted_in_the_docs_are_config():
    text = _text(USER_PAGES)
    assert f"streaming chunk size ({_config.DEFAULTS.chunk_size:,} rows)" in text
    assert f"duplicate threshold ({_config.DEFAULTS.dedupe_threshold})" in text
    assert f"cosine score of {_config.DEFAULTS.dedupe_threshold}" in text  # serve.md
    for cmd in ("tag", "dedupe", "themes"):
        assert _parsers()[cmd].get_default("chunk_size") == _config.DEFAULTS.chunk_size
    assert _parsers()["dedupe"].get_default("threshold") in (None, _config.DEFAULTS.dedupe_threshold)


def test_environment_table_is_config():
    """docs/embedding.md's table of variables is `_config.VARIABLES`, with `_config`'s defaults."""
    text = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| `FEEDBACK_NLP_")]
    table = {r[0].strip("`"): r[-1].strip("`") for r in rows}
    assert set(table) == set(_config.VARIABLES)
    d = _config.DEFAULTS
    assert (table["FEEDBACK_NLP_BACKEND"], table["FEEDBACK_NLP_AUTO"]) == (d.backend, d.auto)
    assert (table["FEEDBACK_NLP_LONG_TEXT"], table["FEEDBACK_NLP_DATE_ORDER"]) == (d.long_text, d.date_order)
    named = set(re.findall(r"FEEDBACK_NLP_[A-Z_]+", _text(PAGES)))
    assert named <= set(_config.VARIABLES), named - set(_config.VARIABLES)


# --- the public API -----------------------------------------------------------------------------------------

def test_every_public_name_is_documented():
    """`feedback_nlp.__all__` held 11 names no page mentioned: `FeedbackNLPError` (the one error callers are
    told to catch), `ColumnError`, `InputNotFoundError`, `MissingDependencyError`, `TaxonomyError`,
    `UnknownTagError`, `FeedbackData`, `EvaluationReport`, `demand_scores`, `redact_pii`, `__version__`."""
    text = _text(USER_PAGES)
    assert not [n for n in fb.__all__ if not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]


def test_every_name_imported_from_the_package_in_the_docs_exists():
    text = _text(PAGES)
    for names in re.findall(r"from feedback_nlp import ([\w, ]+)", text):
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(fb, name) or name.startswith("_"), name
    for name in set(re.findall(r"`fb\.([A-Za-z_]\w*)", text)):
        assert hasattr(fb, name), name


# --- HTTP routes --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def openapi(tmp_path_factory):
    from feedback_nlp.service import ServiceConfig, create_app

    app = create_app(ServiceConfig(data_dir=tmp_path_factory.mktemp("svc")))  # routes only: nothing started
    return app.openapi()


def test_every_route_in_serve_md_exists(openapi):
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(/(?:v1|healthz|readyz|metrics)[\w/{}.-]*)", text))
    paths = {re.sub(r"\{\w+\}", "X", p) for p in openapi["paths"]}
    missing = [r for r in named if re.sub(r"/v1/backlog/[^/]+$", "/v1/backlog/X", r.rstrip(".")) not in paths]
    assert not missing, missing
    assert {"/v1/tag", "/v1/backlog/{item_id}", "/v1/score/demand", "/metrics"} <= set(openapi["paths"])
    assert "delete" in openapi["paths"]["/v1/backlog/{item_id}"]


def test_every_served_route_is_documented(openapi):
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    assert not [p for p in openapi["paths"] if p.replace("{item_id}", "B-1") not in text and p not in text]


# --- figures: the results the pages cite exist --------------------------------------------------------------

def test_every_results_file_the_docs_cite_exists():
    """Every `benchmarks/results/...` or `results/...` file a page cites is there and is JSON (a name pattern
    such as `lexical-*.json` matches at least one file; `adapters-NAME.json` is a template)."""
    results = ROOT / "benchmarks" / "results"
    cited = set(re.findall(r"(?<![\w/])(?:benchmarks/)?results/([\w.*/-]+\.json)(?!\w)", _text(PAGES))) - {"adapters-NAME.json"}
    assert len(cited) > 30
    bare = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")  # files named alone in its tables
    cited |= set(re.findall(r"`([\w*-]+\.json)`", bare)) - {"backends.json"}  # backends.json: $FEEDBACK_NLP_HOME's
    missing = [c for c in sorted(cited) if not sorted(results.glob(c))]
    assert not missing, missing
    for name in cited:
        for path in results.glob(name):
            json.loads(path.read_text(encoding="utf-8"))


# --- parameter defaults and figures quoted in the prose -----------------------------------------------------

def test_parameter_defaults_quoted_in_themes_md_are_the_signatures():
    import inspect

    from feedback_nlp.scoring import NON_ASK_TAGS

    text = " ".join((ROOT / "docs" / "themes.md").read_text(encoding="utf-8").split())
    deduper = {k: v.default for k, v in inspect.signature(fb.Deduper).parameters.items()}
    themes = {k: v.default for k, v in inspect.signature(fb.ThemeModel).parameters.items()}
    assert "`lexical_weight` (default 0.3" in text and deduper["lexical_weight"] == 0.3
    assert "`exact_max` (50,000)" in text and deduper["exact_max"] == 50_000
    assert "most 1% of the indexed items" in text and deduper["lexical_max_df"] == 0.01
    assert "`merge_threshold` (0.92)" in text and themes["merge_threshold"] == 0.92
    assert "`assign_threshold` (0.5)" in text and themes["assign_threshold"] == 0.5
    assert "`min_assign_threshold` (0.35)" in text and themes["min_assign_threshold"] == 0.35
    assert "`max_outlier_share` (default 5%; the CLI's `--max-outlier-share` 15%)" in text
    assert themes["max_outlier_share"] == 0.05 and _parsers()["themes"].get_default("max_outlier_share") == 0.15
    assert deduper["threshold"] == _config.DEFAULTS.dedupe_threshold
    # "mostly tagged as praise (`praise`, ...)": every non-ask tag, not three of the five
    listed = re.search(r"mostly tagged as praise \(([^)]*)\)", text).group(1)
    assert set(re.findall(r"`(\w+)`", listed)) == set(NON_ASK_TAGS)


def test_sentiment_rebuild_time_in_tagging_md_is_the_shipped_models():
    """docs/tagging.md said the bundled sentiment model rebuilds in "263 s for the whole rebuild on a quiet
    machine": the in-sample model it replaced. The shipped one (held-out calibration) took 344 s
    (benchmarks/results/rebuilds_quiet.json, its model card)."""
    runs = json.loads((ROOT / "benchmarks" / "results" / "rebuilds_quiet.json").read_text(encoding="utf-8"))
    shipped = [v for k, v in runs.items() if k.startswith("sentiment") and "shipped" in k]
    assert len(shipped) == 1
    seconds = round(shipped[0]["metrics"]["whole script seconds"])
    text = " ".join((ROOT / "docs" / "tagging.md").read_text(encoding="utf-8").split())
    said = re.search(r"`models/train_sentiment.py`, (\d+) s for the whole rebuild", text)
    assert said and int(said.group(1)) == seconds


def test_score_demand_without_a_revenue_column_says_how_to_go_without(tmp_path, capsys):
    """`score --help` says `--revenue-col` takes '' for none, and docs/cli.md that an error says what to do;
    a file without `account_revenue` (an optional column, docs/ingest.md) got only "column 'account_revenue'
    (given by --revenue-col) not found". The error now names the way out, which works."""
    from feedback_nlp.cli import main

    src = tmp_path / "themes.csv"
    src.write_text("id,theme,account_id,created_at\n1,sso,a,2026-01-01\n2,sso,b,2026-01-02\n", encoding="utf-8")
    out = tmp_path / "demand.csv"
    assert main(["score", "--in", str(src), "--out", str(out), "--framework", "demand"]) == 2
    assert "pass --revenue-col '' to go without it" in capsys.readouterr().err and not out.exists()
    assert main(["score", "--in", str(src), "--out", str(out), "--framework", "demand", "--revenue-col", ""]) == 0
    assert out.exists()


def test_the_outputs_the_pages_show_are_what_their_code_prints(tmp_path, monkeypatch):
    """A Python block followed by a plain block shows what it prints (docs/ingest.md's tables of accepted and
    rejected rows): tests/test_docs.py runs the code but never compared the shown output."""
    import io

    monkeypatch.chdir(tmp_path)
    shown = 0
    for page in USER_PAGES:
        text = page.read_text(encoding="utf-8")
        blocks = list(re.finditer(r"```python\n(.*?)```", text, flags=re.S))
        if not any(re.match(r"\n\n?```\n", text[b.end():]) for b in blocks):
            continue
        namespace: dict = {"__name__": "__doc__"}
        for block in blocks:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(block.group(1), page.name, "exec"), namespace)
            after = re.match(r"\n\n?```\n(.*?)```", text[block.end():], flags=re.S)
            if after:
                shown += 1
                line = text[:block.start()].count("\n") + 1
                assert [s.rstrip() for s in printed.getvalue().strip().splitlines()] == [
                    s.rstrip() for s in after.group(1).strip().splitlines()], f"{page.name}:{line}"
    assert shown >= 8


def test_every_pii_placeholder_is_listed():
    """docs/embedding.md listed nine placeholders PII is redacted to; `redact_pii` writes eleven (`<DOB>` and
    `<NATIONAL_ID>` were missing). docs/ingest.md's table has a row for each."""
    source = (ROOT / "src" / "feedback_nlp" / "cleaning.py").read_text(encoding="utf-8")
    tokens = set(re.findall(r"[\"'](<[A-Z_]+>)[\"']", source))
    assert len(tokens) >= 11
    embedding = " ".join((ROOT / "docs" / "embedding.md").read_text(encoding="utf-8").split())
    listed = re.search(r"PII redacted to (.*?): see", embedding).group(1)
    assert set(re.findall(r"`(<[A-Z_]+>)`", listed)) == tokens
    ingest = (ROOT / "docs" / "ingest.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `(<[A-Z_]+>)`", ingest, flags=re.M)) == tokens


def test_onnx_export_folder_is_where_embedding_md_says(monkeypatch, tmp_path):
    from feedback_nlp.backends import _onnx

    text = " ".join((ROOT / "docs" / "embedding.md").read_text(encoding="utf-8").split())
    assert "cached under `$FEEDBACK_NLP_HOME/onnx` (by default `~/.cache/feedback_nlp/onnx`)" in text
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path))
    assert _onnx.onnx_cache_dir() == tmp_path / "onnx"


def test_every_keyword_the_prose_names_is_a_parameter():
    """A `name=value` in the prose (`keep_base=True`, `placeholders=()`, `finetune_calibration="crossfit"`) is a
    parameter of some function or class of the package (code blocks are run by tests/test_docs.py already)."""
    import importlib
    import inspect
    import pkgutil

    params: set[str] = set()

    def add(obj) -> None:
        with contextlib.suppress(TypeError, ValueError):
            params.update(inspect.signature(obj).parameters)

    for info in pkgutil.walk_packages(fb.__path__, "feedback_nlp."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for obj in vars(module).values():
            if callable(obj):
                add(obj)
            if inspect.isclass(obj):
                for member in vars(obj).values():
                    add(getattr(member, "__func__", member))
    # transformers, a URL's query, an SQLite pragma, a Dropbox link's query, dask's to_parquet
    outside = {"local_files_only", "id_token", "synchronous", "rlkey", "schema", "write_index"}
    unknown = []
    for page in USER_PAGES:
        prose = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for span in re.findall(r"`([^`\n]*)`", prose):
            unknown += [f"{page.name}: {k} in `{span}`" for k in re.findall(r"(?<![\w.\-])([a-z_][a-z0-9_]*)=(?!=)", span)
                        if k.rsplit("__", 1)[-1] not in params | outside]  # a routed step__param names param
    assert len(params) > 200 and not unknown, unknown


def test_scoring_md_defaults_are_the_codes():
    import inspect

    from feedback_nlp.scoring import DEFAULT_DEMAND_WEIGHTS

    text = " ".join((ROOT / "docs" / "scoring.md").read_text(encoding="utf-8").split())
    said = re.search(r"Default weights: (.*?)\.(?!\d)", text).group(1)
    assert {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)", said)} == DEFAULT_DEMAND_WEIGHTS
    assert "must when `p ≥ 0.8`, should when `p ≥ 0.5`, could when `p ≥ 0.2`" in text
    assert inspect.signature(fb.moscow).parameters["quantiles"].default == (0.8, 0.5, 0.2)
    assert _parsers()["score"].get_default("window") == inspect.signature(fb.theme_scores).parameters[
        "window"].default


def test_tag_output_and_errors_columns_are_the_ones_batch_md_names(tmp_path, monkeypatch):
    """docs/batch.md: the output has `row`, `id`, `tags`, `probabilities`, `confidence`, `needs_review`; the
    errors file (default `<out>.errors.<ext>`) `row`, `id`, `reason` and the redacted `text`."""
    import pandas as pd

    from _hostile_support import hashed_tag_model, write_file

    text = " ".join((ROOT / "docs" / "batch.md").read_text(encoding="utf-8").split())
    assert "with `row`, `id`, `tags`, `probabilities`" in text and "`confidence`, `needs_review`" in text
    assert "(`--errors`, default `<out>.errors.<ext>`) with `row` (the line in the input), `id`, `reason` and the " \
           "redacted `text`" in text
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text\n1,export fails\n2,N/A\n3,mail ann@example.com please add sso\n")
    summary = fb.tag_file(model, data, tmp_path / "out.parquet", cache=False, progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet")
    errors = pd.read_parquet(tmp_path / "out.errors.parquet")
    assert list(out.columns) == ["row", "id", "tags", "probabilities", "confidence", "needs_review"]
    assert list(errors.columns) == ["row", "id", "reason", "text"] and errors["row"].tolist() == [3]
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (3, 2, 1)


def test_every_file_the_report_writes_is_in_report_md():
    """docs/report.md's table of files left out `praise_themes.csv`, which `report` writes (REPORT_FILES)."""
    from feedback_nlp.report import REPORT_FILES

    text = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    assert not [name for name in REPORT_FILES if f"`{name}`" not in text]
