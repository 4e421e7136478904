"""Where singerbench keeps what it computes: one cache root, overridable, with one folder per station."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "SINGERBENCH_CACHE_DIR"


def cache_root(override: Path | str | None = None) -> Path:
    """The cache root: ``override``, else ``$SINGERBENCH_CACHE_DIR``, else the user cache dir (~/.cache/singerbench)."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("singerbench"))


def station_dir(station: str, override: Path | str | None = None) -> Path:
    """The folder of one station (``synth``, ``embeddings``, ``separation``, ...) under the cache root."""
    return cache_root(override) / station
