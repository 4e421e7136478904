"""Shared fixtures. The tiny generated corpus is rendered once and reused across test runs (in .cache/test)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = Path(os.environ.get("SINGERBENCH_TEST_CACHE", REPO / ".cache" / "test"))

# Tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def test_cache() -> Path:
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    return TEST_CACHE


@pytest.fixture(scope="session")
def tiny_synth(test_cache):
    """The `tiny` generated-singers corpus (seed 0) as a Manifest; rendered on first use, then a cache hit."""
    from singerbench.datasets.synth import load

    # pytest-xdist workers share the cache: one renders while the others wait on the lock, then all hit it.
    with open(test_cache / "tiny_synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return load(preset="tiny", seed=0, cache_dir=test_cache, progress=False)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def shared_corpus_cache(tmp_path, test_cache) -> Path:
    """A cache root sharing the rendered tiny corpus (a link to the test cache's synth/) with a fresh store."""
    root = tmp_path / "cache"
    root.mkdir()
    (root / "synth").symlink_to(test_cache / "synth")
    return root


@pytest.fixture()
def toy(tmp_path):
    """The toy plugin module of test_store (TOY), loaded from a file as a user's plugin would be."""
    import importlib.util

    from test_store import TOY

    path = tmp_path / "toyplugin.py"
    path.write_text(TOY)
    spec = importlib.util.spec_from_file_location("toyplugin", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
