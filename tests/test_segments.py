"""SegmentSource: the right stem, resampled, channel-matched, peak-normalised, cut at the right place."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from singerbench.errors import UserError
from singerbench.manifest import Track
from singerbench.segments import SegmentSource


def write(path, x: np.ndarray, rate: int):
    sf.write(path, x, rate, subtype="FLOAT")
    return path


def sine(freq: float, seconds: float, rate: int, amp: float) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def track(tid: str, audio, offsets=(0.0,), vocals=None) -> Track:
    return Track(id=tid, audio=audio, singers=("s",), role="train", vocal_offsets=tuple(offsets), vocals=vocals)


def test_ramp_segments_at_known_offsets(tmp_path):
    rate = 8000
    ramp = np.linspace(0.0, 0.5, 5 * rate, endpoint=False, dtype=np.float32)
    t = track("r", write(tmp_path / "ramp.wav", ramp, rate))
    src = SegmentSource(sample_rate=rate, channels=1, input_kind="mixture", segment_seconds=1.0)
    seg = src.segment(t, 2.0)
    assert seg.shape == (1, rate) and seg.dtype == np.float32
    np.testing.assert_allclose(seg[0], ramp[2 * rate : 3 * rate] / ramp.max(), rtol=1e-6)
    # the tail is zero-padded to a full segment
    tail = src.segment(t, 4.5)
    np.testing.assert_allclose(tail[0, : rate // 2], ramp[-rate // 2 :] / ramp.max(), rtol=1e-6)
    assert np.all(tail[0, rate // 2 :] == 0)
    with pytest.raises(UserError, match=r"track 'r': offset 5\.000 s is at or after the end of its audio"):
        src.segment(t, 5.0)
    with pytest.raises(UserError, match="negative"):
        src.segment(t, -1.0)


def test_resampled_sine_is_where_it_should_be(tmp_path):
    # 3 Hz sine at 22.05 kHz, asked at 16 kHz: sample k of the segment at offset o is sin(2π·3·(o + k/16000))
    t = track("s", write(tmp_path / "s.wav", sine(3.0, 4.0, 22050, 0.25), 22050))
    src = SegmentSource(sample_rate=16000, channels=1, input_kind="mixture", segment_seconds=1.5)
    for off in (0.5, 1.25, 2.0):
        seg = src.segment(t, off)[0]
        k = np.arange(seg.shape[0]) / 16000
        want = np.sin(2 * np.pi * 3.0 * (off + k))  # peak-normalised amplitude 1
        assert np.max(np.abs(seg - want)) < 2e-3


def test_batches_keep_order_and_match_segments(tmp_path):
    rng = np.random.default_rng(1)
    tracks = [
        track(f"t{i}", write(tmp_path / f"t{i}.wav", rng.uniform(-0.5, 0.5, 3 * 8000).astype(np.float32), 8000),
              offsets=(0.0, 1.0, 2.5))
        for i in range(3)
    ]
    segs = [(t, o) for t in tracks for o in t.vocal_offsets]
    src = SegmentSource(sample_rate=8000, channels=2, input_kind="mixture", segment_seconds=1.0, prefetch=1)
    got = list(src.batches(segs, batch_size=4))
    assert [len(items) for items, _ in got] == [4, 4, 1]
    assert [s for items, _ in got for s in items] == segs
    for items, batch in got:
        assert batch.dtype == torch.float32 and batch.shape == (len(items), 2, 8000)
        for (t, o), row in zip(items, batch, strict=True):
            np.testing.assert_array_equal(row.numpy(), src.segment(t, o))
            np.testing.assert_array_equal(row[0].numpy(), row[1].numpy())  # mono duplicated to stereo


def test_batches_raise_the_decoders_error_and_can_stop_early(tmp_path):
    good = track("g", write(tmp_path / "g.wav", sine(100, 2.0, 8000, 0.3), 8000), offsets=(0.0, 1.0))
    gone = track("x", tmp_path / "gone.wav")
    src = SegmentSource(sample_rate=8000, channels=1, input_kind="mixture", segment_seconds=1.0)
    it = src.batches([(good, 0.0), (good, 1.0), (gone, 0.0)], batch_size=2)
    items, _ = next(it)
    assert items == [(good, 0.0), (good, 1.0)]
    with pytest.raises(UserError, match=r"gone\.wav does not exist"):
        next(it)
    # a consumer that stops early does not hang
    many = [(good, 0.0)] * 50
    for _ in src.batches(many, batch_size=1):
        break


def test_silent_track_names_the_track(tmp_path):
    t = track("quiet", write(tmp_path / "q.wav", np.zeros(8000, dtype=np.float32), 8000))
    src = SegmentSource(sample_rate=8000, channels=1, input_kind="mixture", segment_seconds=0.5)
    with pytest.raises(UserError, match=r"track 'quiet' .*q\.wav\) is silent"):
        src.segment(t, 0.0)


def test_vocal_stem_choice(tmp_path):
    mix = write(tmp_path / "mix.wav", sine(200, 2.0, 8000, 0.5), 8000)
    voc = write(tmp_path / "voc.wav", sine(300, 2.0, 8000, 0.1), 8000)
    with_stem, without = track("a", mix, vocals=voc), track("b", mix)
    vocal_src = SegmentSource(sample_rate=8000, channels=1, input_kind="vocals", segment_seconds=1.0)
    mix_src = SegmentSource(sample_rate=8000, channels=1, input_kind="mixture", segment_seconds=1.0)
    assert vocal_src.stem_path(with_stem) == voc and vocal_src.stem_id(with_stem) == "dataset"
    assert mix_src.stem_path(with_stem) == mix and mix_src.stem_id(with_stem) == "mixture"
    np.testing.assert_allclose(vocal_src.segment(with_stem, 0.0)[0], sine(300, 1.0, 8000, 1.0), atol=1e-4)
    with pytest.raises(UserError, match=r"listens to vocals and track 'b' has no such stem: give the stem in the manifest's 'vocals' column, or pass a separator"):
        vocal_src.segment(without, 0.0)


def test_for_embedder_and_bad_config():
    from singerbench.embedder import Embedder

    class E(Embedder):
        sample_rate, channels, input_kind, segment_seconds, embedding_dim = 22050, 2, "vocals", 3.0, 4

    src = SegmentSource.for_embedder(E())
    assert src.audio_config() == E().audio_config() and src.segment_samples == 66150
    with pytest.raises(UserError, match="input kind"):
        SegmentSource(16000, 1, "drums")
    with pytest.raises(UserError, match="channels"):
        SegmentSource(16000, 3, "mixture")
