"""Decoding, resampling, channel matching and the errors a user sees for bad audio files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from shared_data import SHARED_AUDIO

from singerbench.audio import audio_info, file_digest, load_audio, peak_normalise, read_segment
from singerbench.errors import UserError

DATA = SHARED_AUDIO


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_resample_keeps_the_tone_and_the_length(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440, 2.0, 44100), 44100, subtype="FLOAT")
    x = load_audio(path, 16000, 1)
    assert x.dtype == np.float32 and x.shape == (1, 32000)
    # away from the edges the resampled signal is the same sine sampled at 16 kHz
    t = np.arange(32000) / 16000
    ref = 0.5 * np.sin(2 * np.pi * 440 * t)
    assert np.max(np.abs(x[0, 1000:-1000] - ref[1000:-1000])) < 1e-3
    # deterministic
    assert np.array_equal(x, load_audio(path, 16000, 1))


def test_mono_is_duplicated_and_stereo_averaged(tmp_path):
    mono = tmp_path / "mono.flac"
    sf.write(mono, tone(220, 1.0, 16000), 16000)
    st = load_audio(mono, 16000, 2)
    assert st.shape == (2, 16000) and np.array_equal(st[0], st[1])

    stereo = tmp_path / "stereo.wav"
    left, right = tone(220, 1.0, 16000, 0.2), tone(330, 1.0, 16000, 0.4)
    sf.write(stereo, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    m = load_audio(stereo, 16000, 1)
    assert m.shape == (1, 16000)
    np.testing.assert_allclose(m[0], (left + right) / 2, atol=1e-7)
    both = load_audio(stereo, 16000, 2)
    np.testing.assert_array_equal(both, np.stack([left, right]))


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "flac"])
def test_compressed_formats_decode(tmp_path, fmt):
    path = tmp_path / f"t.{fmt}"
    sf.write(path, tone(440, 1.5, 22050), 22050)
    x = load_audio(path, 16000, 1)
    assert x.shape[0] == 1 and abs(x.shape[1] - 24000) < 2000  # mp3 may add encoder padding
    assert 0.3 < np.max(np.abs(x)) < 0.7


def test_real_recording_decodes():
    x = load_audio(DATA / "librispeech-198-209-0000.ogg", 16000, 1)
    assert x.shape[0] == 1 and x.shape[1] > 10 * 16000
    y = peak_normalise(x)
    assert np.isclose(np.max(np.abs(y)), 1.0)


def test_peak_normalise_and_silence(tmp_path):
    x = np.array([[0.1, -0.4, 0.2]], dtype=np.float32)
    np.testing.assert_allclose(peak_normalise(x), x / 0.4)
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 8000)
    with pytest.raises(UserError, match=r"silent\.wav is silent .*cannot peak-normalise"):
        peak_normalise(load_audio(path, 8000, 1), path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match=r"nope\.wav does not exist"):
        load_audio(tmp_path / "nope.wav", 16000, 1)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 10)
    with pytest.raises(UserError, match=r"cannot decode audio file .*bad\.wav: .+"):
        load_audio(bad, 16000, 1)
    with pytest.raises(UserError, match=r"cannot decode audio file .*bad\.wav"):
        audio_info(bad)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"ID3 this is not an mp3 stream" * 40)
    with pytest.raises(UserError, match=r"garbage\.mp3: not a readable audio stream \(corrupt"):
        load_audio(garbage, 16000, 1)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(UserError, match="holds no samples"):
        load_audio(empty, 8000, 1)


def test_read_segment_matches_the_whole_track(tmp_path):
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal((16000 * 5, 2))).astype(np.float32)
    path = tmp_path / "n.wav"
    sf.write(path, noise, 16000, subtype="FLOAT")
    whole = load_audio(path, 16000, 2)
    seg = read_segment(path, 1.5, 2.0, 16000, 2)
    np.testing.assert_array_equal(seg, whole[:, 24000:56000])
    tail = read_segment(path, 4.0, 2.0, 16000, 1)  # runs past the end: zero-padded
    assert tail.shape == (1, 32000) and np.all(tail[:, 16000:] == 0) and np.any(tail[:, :16000] != 0)
    with pytest.raises(UserError, match=r"offset 5\.000 s is at or after the end"):
        read_segment(path, 5.0, 2.0, 16000, 1)
    assert audio_info(path).duration == 5.0


def test_file_digest_follows_content(tmp_path):
    path = tmp_path / "d.wav"
    sf.write(path, tone(440, 0.5, 8000), 8000)
    d1 = file_digest(path)
    copy = tmp_path / "copy.wav"
    copy.write_bytes(path.read_bytes())
    assert file_digest(copy) == d1
    sf.write(path, tone(450, 0.5, 8000), 8000)
    assert file_digest(path) != d1
