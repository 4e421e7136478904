"""The vocal activity detector: exact ground truth from vocal stems, precision/recall on mixtures and stems."""

from __future__ import annotations

import re

import numpy as np
import pytest
from shared_data import SHARED_AUDIO

from singerbench import vad
from singerbench.errors import UserError
from singerbench.manifest import Manifest

AUDIO = SHARED_AUDIO


def test_stem_activity_is_exact():
    sr = 16000
    stem = np.zeros(12 * sr, dtype=np.float32)
    stem[3 * sr : 6 * sr] = np.sin(np.arange(3 * sr) * 0.1)  # voice only in the second 3 s segment
    stem[9 * sr : int(9.5 * sr)] = 0.5  # 0.5 s of voice: below the 25 % share
    assert vad.stem_activity(stem, sr).tolist() == [0, 1, 0, 0]


def test_detector_shapes_and_offsets(tmp_path):
    import soundfile as sf

    sr = 16000
    rng = np.random.default_rng(0)
    wave = (0.01 * rng.standard_normal(13 * sr)).astype(np.float32)
    probs = vad.detect_vocal_segments(wave, sr)
    assert probs.shape == (4,) and ((probs >= 0) & (probs <= 1)).all()
    assert set(vad.detect_vocal_segments(wave, sr, threshold=0.5).tolist()) <= {0, 1}
    sf.write(tmp_path / "x.wav", wave, sr)
    offs = vad.vocal_offsets(tmp_path / "x.wav")
    assert all(o % 3 == 0 and o + 6 <= 13 for o in offs)
    with pytest.raises(UserError, match="multiple"):
        vad.vocal_offsets(tmp_path / "x.wav", segment_seconds=4.0)
    (tmp_path / "bad.mp3").write_bytes(b"not audio")
    with pytest.raises(UserError, match="cannot decode"):
        vad.vocal_offsets(tmp_path / "bad.mp3")


@pytest.mark.skipif(not AUDIO.is_dir(), reason="needs ../shared/data/audio")
def test_recordings_held_out(tmp_path):
    """Held-out corpus (seed 7) of real readings over a real instrumental: mixtures and stems."""
    tracks = vad.recordings_corpus(AUDIO, tmp_path, seed=7, n_tracks=6)
    scores = vad.evaluate_vad(Manifest("rec", tracks, ["reader"]))
    # measured with the shipped weights: mixtures P 0.91 R 1.00, stems P 1.00 R 1.00 (docs/datasets.md)
    assert scores["vocals"]["precision"] >= 0.9 and scores["vocals"]["recall"] >= 0.9
    assert scores["mixture"]["precision"] >= 0.9 and scores["mixture"]["recall"] >= 0.9


def test_generated_singers(tiny_synth):
    """Precision and recall on the tiny generated corpus (seed 0, never fit) against its stems' exact activity."""
    half = Manifest("synth-half", tiny_synth.tracks[::2], tiny_synth.singers)
    scores = vad.evaluate_vad(half)
    # measured with the shipped weights: here mixtures P 1.00 R 0.92, stems P 1.00 R 0.99; on all 62 tracks
    # mixtures P 1.00 R 0.91, stems P 1.00 R 0.98 (docs/datasets.md)
    assert scores["vocals"]["precision"] >= 0.95 and scores["vocals"]["recall"] >= 0.95
    assert scores["mixture"]["precision"] >= 0.95 and scores["mixture"]["recall"] >= 0.9


def _held_out_backing(style_name: str, path, seed: int):
    import soundfile as sf

    from singerbench.vadcorpus import HELD_OUT_STYLES, render_style

    style = next(st for st in HELD_OUT_STYLES if st.name == style_name)
    x = render_style(style, 18.0, seed=seed)
    sf.write(path, x / np.abs(x).max() * 0.8, 16000, subtype="PCM_24")
    return path


def test_noise_silence_and_instrumentals_are_never_vocal(tiny_synth, tmp_path):
    """White and pink noise at three levels, silence, the generated singers' instrumentals and a backing of a
    held-out family (harp and strings; never fit on, a seed unlike the docs' figures'): no 3 s segment is vocal
    with the shipped weights."""
    import soundfile as sf

    from singerbench.vadcorpus import _pink, negative_rate

    rng = np.random.default_rng(3)
    sr, n = 16000, 18 * 16000
    files = {}
    for level in (-60, -40, -20):  # white noise at about -40 dBFS was flagged by the first detector
        x = rng.standard_normal(n)
        files[f"white{level}"] = x / np.sqrt(np.mean(x**2)) * 10 ** (level / 20)
    files["silence"] = np.zeros(n)
    for name, x in files.items():
        probs = vad.detect_vocal_segments(x.astype(np.float32), sr)
        assert (probs < vad.DEFAULT_THRESHOLD).all(), (name, probs)
    for level in (-60, -40, -20):
        x = _pink(n, rng)
        files[f"pink{level}"] = x / np.sqrt(np.mean(x**2)) * 10 ** (level / 20)
    for name, x in files.items():
        sf.write(tmp_path / f"{name}.flac", x, sr, subtype="PCM_24")
    paths = {k: tmp_path / f"{k}.flac" for k in files}
    paths["harp_strings"] = _held_out_backing("harp_strings", tmp_path / "harp.flac", seed=7001)
    instrumentals = {t.id: t.instrumental for t in tiny_synth.tracks[::8]}
    rates = negative_rate({**paths, **instrumentals})
    assert rates == {k: 0.0 for k in rates}
    assert vad.vocal_offsets(tiny_synth.tracks[0].instrumental) == []


@pytest.mark.skipif(not AUDIO.is_dir(), reason="needs ../shared/data/audio")
def test_organ_backing_and_real_instrumental_are_never_vocal(tmp_path):
    """Issue 14's target for instrumental-only music, met at the track level: the segment detector flags a few
    3 s segments of the organ_swing backing (held-out family) and of Vibe Ace (real instrumental jazz;
    docs/datasets.md: 1 of 6 and 2 of 20), but the paper's track rule (vocal in at least MIN_VOCAL_SHARE of
    its segments) takes neither as sung, so neither gives a vocal segment to embed."""
    organ = _held_out_backing("organ_swing", tmp_path / "organ.flac", seed=7000)
    for path in (organ, AUDIO / "kevin_macleod-vibe_ace.ogg"):
        found = vad.track_vocals(path)
        assert len(found.flags) >= 6 and found.share < vad.MIN_VOCAL_SHARE, (path.name, found)
        assert not found.vocal and found.offsets == () and vad.vocal_offsets(path) == [], (path.name, found)


def test_sung_tracks_pass_the_track_rule(tiny_synth):
    """Generated sung tracks (mixtures and their stems) pass the rule and keep their 6 s offsets."""
    for t in tiny_synth.tracks[1:62:15]:
        for path in (t.audio, t.vocals):
            found = vad.track_vocals(path)
            assert found.vocal and found.share >= vad.MIN_VOCAL_SHARE and found.offsets, (t.id, path, found)
            assert vad.vocal_offsets(path) == list(found.offsets)
    assert vad.track_is_vocal([1, 1, 0, 0]) and not vad.track_is_vocal([1, 0, 0, 0])
    assert not vad.track_is_vocal([]) and not vad.track_is_vocal([0, 0], min_share=0.0)
    assert vad.offsets_source() == f"vad@{vad.DEFAULT_THRESHOLD:g},share>={vad.MIN_VOCAL_SHARE:g}"


def _sung_then_quiet(tiny_synth, path, quiet_seconds: float = 18.0):
    """6 s of a generated stem that the detector hears as vocal on both 3 s halves, then a faint noise bed:
    vocal in 2 of 8 segments, so one 6 s segment but under the track rule's share."""
    import soundfile as sf

    for t in tiny_synth.tracks:
        wave, sr = vad.read_mono(t.vocals)
        flags = vad.detect_vocal_segments(wave, sr, threshold=vad.DEFAULT_THRESHOLD)
        hits = [k for k in range(len(flags) - 1) if flags[k] and flags[k + 1]]
        if not hits:
            continue
        sung = wave[hits[0] * 3 * sr : (hits[0] + 2) * 3 * sr]
        bed = np.random.default_rng(1).standard_normal(int(quiet_seconds * sr)) * 1e-3
        x = np.concatenate([sung, bed]).astype(np.float32)
        sf.write(path, x, sr, subtype="PCM_24")
        return path
    raise AssertionError("no generated stem with two vocal 3 s segments in a row")


def test_no_voice_found_names_the_track_and_the_way_out(tmp_path):
    import soundfile as sf
    from test_datasets_closed import _closed_rows, _write_csv

    from singerbench.datasets import load_dataset

    rows = _closed_rows(tmp_path)
    noise = np.random.default_rng(0).standard_normal(13 * 16000) * 0.01
    sf.write(tmp_path / "noise.wav", noise, 16000)
    rows[0].update(audio="noise.wav", vocal_offsets="")
    with pytest.raises(UserError, match=r"1 tracks with no 6 s segment .* --offsets hop .* vocal_offsets column.*"
                                        r"ana-train0 \(.*noise.wav: vocal in none of its 4 3 s segments\)"):
        load_dataset("closed", manifest=_write_csv(tmp_path / "m.csv", rows))
    m = load_dataset("closed", manifest=tmp_path / "m.csv", offsets="hop")
    assert m.tracks[0].vocal_offsets == (0.0, 6.0)


def test_track_under_the_vocal_share_is_rejected_with_the_shares(tiny_synth, tmp_path):
    """A track with one sung 6 s segment and 18 s without voice: the segment rule alone would embed it; the
    track rule rejects it, and the one-line error says the share found and the share needed, and the ways out."""
    from test_datasets_closed import _closed_rows, _write_csv

    from singerbench.datasets import load_dataset

    path = _sung_then_quiet(tiny_synth, tmp_path / "mostly_quiet.wav")
    found = vad.track_vocals(path)
    assert found.flags[:2] == (1, 1) and found.share < vad.MIN_VOCAL_SHARE and found.offsets == (), found
    assert vad.vocal_offsets(path, min_share=0.2) == [0.0]  # the share is an explicit parameter
    rows = _closed_rows(tmp_path)
    rows[0].update(audio="mostly_quiet.wav", vocal_offsets="")
    with pytest.raises(UserError) as err:
        load_dataset("closed", manifest=_write_csv(tmp_path / "m.csv", rows))
    msg = str(err.value)
    assert "\n" not in msg
    assert re.search(r"ana-train0 \(.*mostly_quiet.wav: vocal in 2 of 8 3 s segments \(25%\), under the 50% the "
                     r"track rule needs\)", msg), msg
    assert "--offsets hop" in msg and "vocal_offsets column" in msg


def test_held_out_backing_family(tiny_synth, tmp_path):
    """Singing over backing families the detector was never fit on (organ swing, harp and strings): the seed-0
    voices of every fifth track (13 tracks, every singer) mixed over them, scored against their stems."""
    from singerbench.vadcorpus import held_out_mixtures

    some = Manifest("some", tiny_synth.tracks[::5], tiny_synth.singers)
    tracks = held_out_mixtures(some, tmp_path, seed=5)
    assert {t.genre for t in tracks} == {"organ_swing", "harp_strings"}
    scores = vad.evaluate_vad(Manifest("held", tracks, sorted({s for t in tracks for s in t.singers})))
    # measured with the shipped weights: here (78 segments, 65 vocal) mixtures P 0.92 R 0.92, stems P 1.00
    # R 1.00; on all 62 tracks with the seed-0 backings mixtures P 0.95 R 0.94 (docs/datasets.md)
    assert scores["mixture"]["precision"] >= 0.9 and scores["mixture"]["recall"] >= 0.9
    assert scores["vocals"]["precision"] >= 0.95 and scores["vocals"]["recall"] >= 0.95
