"""Where the project's real sample data lives: ../shared/data beside the checkout (CI), else /work/shared/data."""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    os.environ.get("SINGERBENCH_SHARED_DATA"),
    Path(__file__).resolve().parents[2] / "shared" / "data",
    "/work/shared/data",
]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), Path("/work/shared/data"))
SHARED_AUDIO = SHARED_DATA / "audio"
