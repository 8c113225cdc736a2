"""One place for configuration: argument > environment > default; the library never writes os.environ."""

import ast
import inspect
import os
from pathlib import Path

import pytest

import feedback_nlp
from feedback_nlp import InvalidInputError, _config
from feedback_nlp._config import DEFAULTS

SRC = Path(feedback_nlp.__file__).parent


@pytest.mark.parametrize(("func", "var", "env_value", "arg", "default"), [
    (_config.backend, "FEEDBACK_NLP_BACKEND", "onnx-int8", "torch", "auto"),
    (_config.long_text, "FEEDBACK_NLP_LONG_TEXT", "truncate", "chunk", DEFAULTS.long_text),
    (_config.auto_mode, "FEEDBACK_NLP_AUTO", "rules", "measured", "measured"),
    (_config.model, "FEEDBACK_NLP_MODEL", "/models/env", "/models/arg", None),
])
def test_argument_beats_environment_beats_default(monkeypatch, func, var, env_value, arg, default):
    monkeypatch.delenv(var, raising=False)
    assert func() == default
    monkeypatch.setenv(var, env_value)
    assert func() == env_value
    assert func(arg) == arg
    monkeypatch.setenv(var, "   ")  # blank counts as unset
    assert func() == default


def test_paths(monkeypatch, tmp_path):
    monkeypatch.delenv("FEEDBACK_NLP_HOME", raising=False)
    monkeypatch.delenv("FEEDBACK_NLP_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _config.home() == tmp_path / "xdg" / "feedback_nlp"
    assert _config.cache_path() == tmp_path / "xdg" / "feedback_nlp" / "embeddings.sqlite"
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path / "home"))
    assert _config.cache_path() == tmp_path / "home" / "embeddings.sqlite"  # the cache follows the home
    monkeypatch.setenv("FEEDBACK_NLP_CACHE", str(tmp_path / "c.sqlite"))
    assert _config.cache_path() == tmp_path / "c.sqlite"
    assert _config.cache_path(tmp_path / "arg.sqlite") == tmp_path / "arg.sqlite"
    monkeypatch.setenv("FEEDBACK_NLP_DATA", str(tmp_path / "data"))
    assert _config.data_dir() == tmp_path / "data"
    from feedback_nlp.cache import default_cache_path
    from feedback_nlp.datasets import benchmark_data_dir

    assert default_cache_path() == tmp_path / "c.sqlite" and benchmark_data_dir() == tmp_path / "data"


def test_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("FEEDBACK_NLP_AUTO", "fastest")
    with pytest.raises(InvalidInputError, match=r"FEEDBACK_NLP_AUTO='fastest' is not valid.*measured"):
        _config.auto_mode()
    monkeypatch.setenv("FEEDBACK_NLP_LONG_TEXT", "summarise")
    with pytest.raises(InvalidInputError, match="FEEDBACK_NLP_LONG_TEXT"):
        _config.long_text()
    with pytest.raises(KeyError, match="not a feedback_nlp variable"):
        _config.env("FEEDBACK_NLP_TYPO")


def _sources():
    return {p: p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def test_only_config_reads_feedback_nlp_variables():
    """Every FEEDBACK_NLP_* name the package mentions is documented in _config.VARIABLES, and only _config
    reads the environment for one."""
    import re

    for path, text in _sources().items():
        for name in set(re.findall(r"FEEDBACK_NLP_[A-Z_]+", text)):
            assert name in _config.VARIABLES, f"{path.name} mentions {name}, which _config does not know"
        if path.name != "_config.py":
            assert not re.search(r"(environ(\.get)?\(?\[?|getenv\()\s*[\"']FEEDBACK_NLP_", text), path


def test_library_never_writes_os_environ():
    writes = []
    for path, text in _sources().items():
        for node in ast.walk(ast.parse(text)):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f = node.func
                if ast.unparse(f.value) == "os.environ" and f.attr in {"setdefault", "update", "pop", "clear"} or ast.unparse(f) in {"os.putenv", "os.unsetenv"}:
                    target = ast.unparse(node)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                target = next((ast.unparse(t) for t in targets if ast.unparse(t).startswith("os.environ[")), None)
            if target:
                writes.append(f"{path.name}: {target}")
    assert writes == []


def test_embedding_leaves_the_environment_as_it_was(monkeypatch, tmp_path):
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path))
    def ours():  # torch itself sets TORCHINDUCTOR_CACHE_DIR on first use; that one is not ours to keep out
        return {k: v for k, v in os.environ.items() if not k.startswith("TORCHINDUCTOR_")}

    before = ours()
    feedback_nlp.Embedder(cache=None, backend="torch").encode(["hello there"])
    assert ours() == before


def test_shared_defaults_live_in_one_place():
    from feedback_nlp import Deduper
    from feedback_nlp.batch import embed_file, tag_file
    from feedback_nlp.cli import build_parser
    from feedback_nlp.report import build_report

    def default(func, name):
        return inspect.signature(func).parameters[name].default

    assert Deduper().threshold == DEFAULTS.dedupe_threshold
    assert default(build_report, "dedupe_threshold") == DEFAULTS.dedupe_threshold
    assert default(tag_file, "chunk_size") == default(embed_file, "chunk_size") == DEFAULTS.chunk_size
    import argparse

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert commands["dedupe"].get_default("threshold") == DEFAULTS.dedupe_threshold
    assert commands["dedupe"].get_default("chunk_size") == DEFAULTS.chunk_size
    assert commands["tag"].get_default("chunk_size") == DEFAULTS.chunk_size
