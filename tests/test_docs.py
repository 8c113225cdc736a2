"""Every Python snippet in the README and docs runs as written, and so do the README's CLI commands."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", [d for d in DOCS if _blocks(d, "python")], ids=lambda d: d.name)
def test_python_snippets_run(doc, tmp_path, monkeypatch, cache_path, sample_vectors):
    monkeypatch.setenv("FEEDBACK_NLP_CACHE", str(cache_path))  # the session already embedded the sample
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc__"}
    for block in _blocks(doc, "python"):
        exec(compile(block, f"{doc.name}", "exec"), namespace)


def test_readme_cli_commands_run(tmp_path, cache_path, sample_vectors):
    commands = [line for block in _blocks(ROOT / "README.md", "bash") for line in block.splitlines()
                if line.startswith(".venv/bin/feedback-nlp")]
    assert len(commands) == 3
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    venv = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv"))
    if not (venv / "bin" / "feedback-nlp").exists():
        pytest.skip("the package's console script is not installed in .venv")
    (tmp_path / ".venv").symlink_to(venv)
    env = {**os.environ, "FEEDBACK_NLP_CACHE": str(cache_path)}
    for cmd in commands:
        res = subprocess.run(shlex.split(cmd), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{cmd}\n{res.stderr[-2000:]}"
    assert (tmp_path / "tagged.parquet").exists() and (tmp_path / "my-model" / "README.md").exists()
