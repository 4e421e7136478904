"""EmbeddingStore: computes once, resumes after Ctrl-C or SIGKILL bit-exactly, keys on model and audio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from singerbench.errors import UserError
from singerbench.manifest import Manifest, Track
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore

# A deterministic toy plugin whose every row depends only on its own waveform (row-wise ops), so a
# segment's embedding is bit-identical whatever batch it lands in. Written to a file so that a subprocess
# (the SIGKILL test) can import the very same class.
TOY = '''
import os, time
import torch
from singerbench.embedder import Embedder

class Toy(Embedder):
    name = "toy"
    sample_rate = 8000
    channels = 1
    segment_seconds = 1.0
    embedding_dim = 8

    def __init__(self, weights="w1", delay=0.0):
        super().__init__()
        self.weights, self.delay, self.calls = weights, delay, 0

    def weights_id(self):
        return self.weights

    def embed(self, batch):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        x = batch[:, 0]
        chunks = x.reshape(x.shape[0], 4, -1)
        return torch.cat([chunks.mean(-1), chunks.abs().amax(-1)], dim=1)
'''




def make_manifest(folder: Path, n_tracks: int = 4, seconds: float = 4.0) -> Manifest:
    rng = np.random.default_rng(0)
    tracks = []
    for i in range(n_tracks):
        path = folder / f"track{i}.flac"
        sf.write(path, rng.uniform(-0.8, 0.8, int(seconds * 8000)).astype(np.float32), 8000)
        offs = tuple(np.arange(0.0, seconds - 0.5, 0.5).round(3))
        tracks.append(Track(id=f"t{i}", audio=path, singers=(f"s{i % 2}",), role="train", vocal_offsets=offs))
    return Manifest(name="toyset", tracks=tracks, singers=["s0", "s1"])


def run(store_root, embedder, manifest, **kw):
    store = EmbeddingStore(store_root)
    table = store.embed(embedder, manifest, SegmentSource.for_embedder(embedder), progress=False, **kw)
    return store, table


def test_second_run_computes_nothing(tmp_path, toy):
    man = make_manifest(tmp_path)
    n = sum(len(t.vocal_offsets) for t in man.tracks)
    store, table = run(tmp_path / "store", toy.Toy(), man, batch_size=5, flush_every=8)
    assert (store.computed, store.reused) == (n, 0)
    assert table.vectors.shape == (n, 8) and table.vectors.dtype == np.float32
    assert table.track_ids[:7] == ["t0"] * 7 and table.offsets[1] == 0.5
    again, table2 = run(tmp_path / "store", toy.Toy(), man)
    assert (again.computed, again.reused) == (0, n)
    assert np.array_equal(table.vectors, table2.vectors)
    # rows of one track in its offset order, and only the requested tracks when asked
    np.testing.assert_array_equal(table.for_track("t2"), table.vectors[14:21])
    _, sub = run(tmp_path / "store", toy.Toy(), man, tracks=[man.tracks[3]])
    np.testing.assert_array_equal(sub.vectors, table.for_track("t3"))
    # the dataset can move: keys follow file content, not path
    moved = tmp_path / "moved"
    moved.mkdir()
    tracks = []
    for t in man.tracks:
        (moved / t.audio.name).write_bytes(t.audio.read_bytes())
        tracks.append(Track(id=t.id, audio=moved / t.audio.name, singers=t.singers, role=t.role,
                            vocal_offsets=t.vocal_offsets))
    again, _ = run(tmp_path / "store", toy.Toy(), Manifest(name="toyset", tracks=tracks, singers=man.singers))
    assert again.computed == 0


def test_ctrl_c_keeps_work_and_resume_is_bit_exact(tmp_path, toy):
    man = make_manifest(tmp_path)
    n = sum(len(t.vocal_offsets) for t in man.tracks)
    _, reference = run(tmp_path / "ref", toy.Toy(), man, batch_size=4)

    class Interrupted(toy.Toy):
        def embed(self, batch):
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().embed(batch)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "store", Interrupted(), man, batch_size=3, flush_every=100)
    store, table = run(tmp_path / "store", toy.Toy(), man, batch_size=5)
    assert store.reused == 9 and store.computed == n - 9  # 3 batches of 3 were kept
    assert np.array_equal(table.vectors, reference.vectors)


def test_sigkill_mid_run_resumes_bit_exact(tmp_path, toy):
    man = make_manifest(tmp_path, n_tracks=6)
    man.to_json(tmp_path / "manifest.json")
    n = sum(len(t.vocal_offsets) for t in man.tracks)
    script = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from toyplugin import Toy
from singerbench.manifest import Manifest
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore
e = Toy(delay=0.2)
EmbeddingStore({str(tmp_path / "store")!r}).embed(e, Manifest.from_json({str(tmp_path / "manifest.json")!r}),
    SegmentSource.for_embedder(e), batch_size=2, flush_every=2, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        shards = tmp_path / "store"
        for _ in range(600):  # wait (at most a minute) until a few shards are written
            if len(list(shards.glob("*/shards/*.json"))) >= 3 or proc.poll() is not None:
                break
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    store, table = run(tmp_path / "store", toy.Toy(), man, batch_size=7)
    assert store.reused >= 6 and store.computed == n - store.reused
    _, reference = run(tmp_path / "ref", toy.Toy(), man)
    assert np.array_equal(table.vectors, reference.vectors)


def test_half_written_files_are_ignored(tmp_path, toy):
    man = make_manifest(tmp_path, n_tracks=1)
    store, table = run(tmp_path / "store", toy.Toy(), man, batch_size=2, flush_every=2)
    shard_dir = next((tmp_path / "store").glob("*/shards"))
    # what a kill leaves behind: a temporary file, and an array whose index was never written
    (shard_dir / ".x.npy.abc.part").write_bytes(b"\x93NUMPY garbage")
    np.save(shard_dir / "99999999999999999999-1-deadbeef.npy", np.full((2, 8), np.nan, dtype=np.float32))
    again, table2 = run(tmp_path / "store", toy.Toy(), man)
    assert again.computed == 0 and np.array_equal(table.vectors, table2.vectors)
    # compaction keeps every embedding and leaves one shard
    assert EmbeddingStore(tmp_path / "store").compact(toy.Toy()) > 1
    assert len(list(shard_dir.glob("*.json"))) == 1
    EmbeddingStore(tmp_path / "store").compact(toy.Toy(), stale_after_s=0)  # leftovers of killed writers go
    assert sorted(p.name for p in shard_dir.iterdir()) == sorted(
        [p.name for p in shard_dir.glob("*.json")] + [p.with_suffix(".npy").name for p in shard_dir.glob("*.json")]
    )
    again, table3 = run(tmp_path / "store", toy.Toy(), man)
    assert again.computed == 0 and np.array_equal(table.vectors, table3.vectors)


def test_model_identity_and_audio_config_separate_entries(tmp_path, toy):
    man = make_manifest(tmp_path, n_tracks=2)
    root = tmp_path / "store"
    run(root, toy.Toy("w1"), man)
    s, _ = run(root, toy.Toy("w2"), man)
    assert s.reused == 0 and s.computed > 0

    class Longer(toy.Toy):
        segment_seconds = 1.5

    s, _ = run(root, Longer("w1"), man)
    assert s.reused == 0
    s, _ = run(root, toy.Toy("w1"), man)
    assert s.computed == 0
    metas = [json.loads(p.read_text()) for p in root.glob("*/meta.json")]
    assert sorted(m["weights_id"] for m in metas) == ["w1", "w1", "w2"]
    assert {m["audio_config"]["segment_seconds"] for m in metas} == {1.0, 1.5}


def test_vocal_stems_from_dataset_and_mixture_are_keyed_apart(tmp_path, toy):
    man = make_manifest(tmp_path, n_tracks=1)
    t = man.tracks[0]
    with_stem = Manifest(name="toyset", singers=man.singers, tracks=[
        Track(id=t.id, audio=t.audio, vocals=t.audio, singers=t.singers, role=t.role, vocal_offsets=t.vocal_offsets)
    ])

    class Vocal(toy.Toy):
        input_kind = "vocals"

    store = EmbeddingStore(tmp_path / "store")
    src = SegmentSource.for_embedder(Vocal())
    keys_vocal = store.keys(with_stem, src, list(with_stem.segments()))
    keys_mix = store.keys(man, SegmentSource.for_embedder(toy.Toy()), list(man.segments()))
    assert not set(keys_vocal) & set(keys_mix)
    with pytest.raises(UserError, match="listens to vocals"):
        store.embed(Vocal(), man, src, progress=False)


@pytest.mark.parametrize(
    "output, message",
    [
        (lambda b: torch.zeros(b.shape[0], 10), r"plugin 'toy' returned shape \(4, 10\) for a batch of 4; it declares "
                                                 r"embedding_dim=8"),
        (lambda b: torch.zeros(b.shape[0], 8, dtype=torch.int64), r"plugin 'toy' returned dtype torch.int64"),
        (lambda b: torch.full((b.shape[0], 8), float("nan")), r"plugin 'toy' returned NaN or infinite values"),
        (lambda b: np.zeros((b.shape[0], 8), dtype=np.float32), r"plugin 'toy' returned ndarray .* torch.Tensor"),
    ],
)
def test_bad_plugin_output_is_a_user_error(tmp_path, toy, output, message):
    man = make_manifest(tmp_path, n_tracks=1)

    class Bad(toy.Toy):
        def embed(self, batch):
            return output(batch)

    with pytest.raises(UserError, match=message):
        run(tmp_path / "store", Bad(), man, batch_size=4)


def test_source_must_fit_the_plugin(tmp_path, toy):
    man = make_manifest(tmp_path, n_tracks=1)
    src = SegmentSource(sample_rate=16000, channels=1, input_kind="mixture", segment_seconds=1.0)
    with pytest.raises(UserError, match="wants audio"):
        EmbeddingStore(tmp_path / "s").embed(toy.Toy(), man, src, progress=False)

    class NoDim(toy.Toy):
        embedding_dim = 0

    with pytest.raises(UserError, match=r"plugin 'toy' declares embedding_dim=0; it must be a positive integer"):
        EmbeddingStore(tmp_path / "s").embed(NoDim(), man, SegmentSource.for_embedder(NoDim()), progress=False)


def test_compacted_store_serves_a_memory_mapped_table(tmp_path, toy):
    """An FMA-sized table must not be held twice in RAM: from one shard it is the shard's memory map."""
    man = make_manifest(tmp_path)
    _, table = run(tmp_path / "store", toy.Toy(), man, batch_size=5, flush_every=8)
    assert not isinstance(table.vectors, np.memmap)  # several shards: gathered into one array
    assert EmbeddingStore(tmp_path / "store").compact(toy.Toy()) > 1
    _, mapped = run(tmp_path / "store", toy.Toy(), man)
    assert isinstance(mapped.vectors, np.memmap) and not mapped.vectors.flags.writeable
    assert np.array_equal(mapped.vectors, table.vectors)
    track = mapped.for_track("t2")
    assert np.shares_memory(track, mapped.vectors) and np.array_equal(track, table.for_track("t2"))
    _, part = run(tmp_path / "store", toy.Toy(), man, tracks=[man.tracks[1], man.tracks[3]])
    assert np.array_equal(part.vectors, np.concatenate([table.for_track("t1"), table.for_track("t3")]))
