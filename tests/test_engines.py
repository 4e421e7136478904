"""Embedding engines: the Ray engine's workers fill the same store the local engine does, with the same numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_run import QUICK, run_cli

from singerbench.engines import ENGINES, EmbedBatches, EmbedJob, get_engine, missing_batches
from singerbench.errors import UserError
from singerbench.registry import resolve_model
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore


@pytest.fixture
def cache(shared_corpus_cache) -> list[str]:
    """Options sharing the rendered tiny corpus but a fresh embedding store per test."""
    return ["--cache-dir", str(shared_corpus_cache), "--no-progress"]


def test_engines_are_a_registry():
    assert set(ENGINES) >= {"local", "ray"}
    with pytest.raises(UserError, match="unknown engine 'spark'; known engines: local, ray"):
        get_engine("spark")


def test_worker_batches_fill_the_store_like_the_local_engine(tiny_synth, tmp_path):
    """What a Ray actor does, run in this process: its shards make the local read compute nothing, same rows."""
    embedder = resolve_model("mfcc").embedder
    source = SegmentSource.for_embedder(embedder)
    local = EmbeddingStore(tmp_path / "local")
    reference = local.embed(embedder, tiny_synth, source, batch_size=16, progress=False)

    shared = EmbeddingStore(tmp_path / "shared")
    batches = missing_batches(shared, embedder, tiny_synth, source, 16)
    n = sum(len(t.vocal_offsets) for t in tiny_synth.tracks)
    assert sum(len(b) for b in batches) == n and all(len(b) == 16 for b in batches[:-1])
    shared._write_meta(shared.model_dir(embedder), embedder)
    worker = EmbedBatches(EmbedJob(model_spec="mfcc"), str(shared.root), batches)
    half = len(batches) // 2
    out = worker({"index": np.arange(half)})
    assert out["embedded"].sum() == sum(len(b) for b in batches[:half])
    # a worker killed here loses nothing already written: only the other half is still missing
    assert sum(len(b) for b in missing_batches(shared, embedder, tiny_synth, source, 16)) == n - out["embedded"].sum()
    worker({"index": np.arange(half, len(batches))})
    assert missing_batches(shared, embedder, tiny_synth, source, 16) == []
    table = shared.embed(embedder, tiny_synth, source, batch_size=16, progress=False)
    assert shared.computed == 0
    assert np.array_equal(table.vectors, reference.vectors)


def test_unknown_engine_is_one_error_line(tiny_synth, cache, capsys):
    code, _, err = run_cli(["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", *QUICK, *cache,
                            "--engine", "spark"], capsys)
    assert code == 1 and err.strip() == "error: unknown engine 'spark'; known engines: local, ray"


@pytest.mark.slow
def test_ray_engine_on_a_local_ray_equals_the_local_engine(tiny_synth, cache, tmp_path, capsys):
    pytest.importorskip("ray")
    args = ["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", *QUICK]
    local_cache = ["--cache-dir", str(tmp_path / "other"), "--no-progress"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "synth").symlink_to((tmp_path / "cache" / "synth").resolve())
    code, _, err = run_cli([*args, *cache, "--engine", "ray", "-o", str(tmp_path / "ray.json")], capsys)
    assert code == 0, err
    code, _, err = run_cli([*args, *local_cache, "-o", str(tmp_path / "local.json")], capsys)
    assert code == 0, err
    ray_doc = json.loads((tmp_path / "ray.json").read_text())
    local_doc = json.loads((tmp_path / "local.json").read_text())
    n = sum(len(t.vocal_offsets) for t in tiny_synth.tracks)
    assert ray_doc["store"] == local_doc["store"] == {"computed": n, "reused": 0}
    assert ray_doc["scores"] == local_doc["scores"]
    assert ray_doc["run_details"] == local_doc["run_details"]
    # a second Ray run finds everything in the store and starts no cluster
    code, _, err = run_cli([*args, *cache, "--engine", "ray", "-o", str(tmp_path / "again.json")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "again.json").read_text())["store"] == {"computed": 0, "reused": n}


CRASH_ONCE = '''
import os
from pathlib import Path

from singerbench.baselines.mfcc import MFCCEmbedder

MARKER = Path({marker!r})
DRIVER = {driver}


class CrashOnce(MFCCEmbedder):
    """mfcc, except that the first Ray worker to reach its second batch dies there (its process exits)."""

    name = "crash-once"
    calls = 0

    def embed(self, batch):
        CrashOnce.calls += 1
        if os.getpid() != DRIVER and CrashOnce.calls == 2 and not MARKER.exists():
            MARKER.write_text(str(os.getpid()))
            os._exit(1)
        return super().embed(batch)
'''


@pytest.mark.slow
def test_ray_engine_resumes_after_a_killed_worker(tiny_synth, cache, tmp_path, capsys):
    """A worker process dies after writing its first batch: Ray restarts it and retries the lost batch, and the
    run ends with the local engine's store counts, scores and per-run details."""
    import os

    pytest.importorskip("ray")
    marker = tmp_path / "worker-died"
    plugin = tmp_path / "crash_once.py"
    plugin.write_text(CRASH_ONCE.format(marker=str(marker), driver=os.getpid()))
    args = ["run", "--model", f"{plugin}:CrashOnce", "--dataset", "synth", "--synth-preset", "tiny", *QUICK,
            "--batch-size", "8"]
    code, _, err = run_cli([*args, *cache, "--engine", "ray", "-o", str(tmp_path / "ray.json")], capsys)
    assert code == 0, err
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker did die mid-run
    local_cache = tmp_path / "other"
    local_cache.mkdir()
    (local_cache / "synth").symlink_to((tmp_path / "cache" / "synth").resolve())
    code, _, err = run_cli([*args, "--cache-dir", str(local_cache), "--no-progress", "-o",
                            str(tmp_path / "local.json")], capsys)
    assert code == 0, err
    ray_doc, local_doc = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("ray", "local"))
    n = sum(len(t.vocal_offsets) for t in tiny_synth.tracks)
    assert ray_doc["store"] == local_doc["store"] == {"computed": n, "reused": 0}
    assert ray_doc["scores"] == local_doc["scores"]
    assert ray_doc["run_details"] == local_doc["run_details"]
