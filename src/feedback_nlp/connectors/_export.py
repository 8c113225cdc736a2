"""The result of reading a vendor export: raw canonical rows plus what was skipped on purpose."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Export:
    """Raw rows of an export (canonical column names, ``_row`` numbering them) and counts of what was
    left out because it is not feedback (``{"bot message": 3, "channel join": 5}``)."""

    frame: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)
