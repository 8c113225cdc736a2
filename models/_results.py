"""What the rebuild scripts of the bundled models share: their ``--results`` JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


def write_results(path: str, args: argparse.Namespace, metrics: dict) -> None:
    """The run's settings and figures as JSON (benchmarks/results/), with the load it ran under."""
    out = {"command": "python " + " ".join(sys.argv), "settings": {k: v for k, v in vars(args).items() if k != "results"},
           "metrics": metrics, "load_average_at_end": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
           "machine": platform.machine(), "timing": "measured under load: other jobs shared the 2 cores"}
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
