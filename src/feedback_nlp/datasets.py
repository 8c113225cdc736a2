"""The bundled sample data and the benchmark data sets.

The sample (``datasets/sample_feedback.csv`` in the repository, bundled in the wheel) is what the demo and
the tests use. Public benchmark sets are read from ``$FEEDBACK_NLP_DATA`` (default ``../shared/datasets``
relative to the repository) and are never copied into the project.

Example:
    >>> df = load_sample()
    >>> len(df), sorted(df["source"].unique())[:2]
    (3000, ['app_review', 'sales_call'])
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import _config

__all__ = ["benchmark_data_dir", "load_benchmark", "load_sample", "sample_path", "sample_taxonomy_path"]

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent.parent


def _bundled(name: str) -> Path:
    for candidate in (_PKG / "_bundled" / name, _REPO / "datasets" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"bundled sample file {name} not found (looked in {_PKG / '_bundled'} and {_REPO / 'datasets'})")


def sample_path() -> Path:
    """Path of the bundled sample CSV (3,000 items about a fictional SaaS product)."""
    return _bundled("sample_feedback.csv")


def sample_taxonomy_path() -> Path:
    """Path of the sample's taxonomy YAML (product areas and request types)."""
    return _bundled("sample_taxonomy.yaml")


def load_sample() -> pd.DataFrame:
    """The sample as a raw DataFrame (use :func:`~feedback_nlp.read_feedback` to validate and clean it)."""
    return pd.read_csv(sample_path(), dtype=str, keep_default_na=False)


def benchmark_data_dir() -> Path:
    """``$FEEDBACK_NLP_DATA`` or ``../shared/datasets`` next to the repository (see :mod:`feedback_nlp._config`)."""
    return _config.data_dir()


def load_benchmark(name: str, split: str = "train") -> pd.DataFrame:
    """Load ``<data dir>/<name>/<split>.csv``; raises FileNotFoundError naming the path if absent."""
    path = benchmark_data_dir() / name / f"{split}.csv"
    if not path.exists():
        raise FileNotFoundError(f"benchmark data {path} not found; set FEEDBACK_NLP_DATA to the datasets folder")
    return pd.read_csv(path, keep_default_na=False)
