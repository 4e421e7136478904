"""The weight-free MFCC baseline and the GE2E speaker encoder, checked against librosa and resemblyzer."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from shared_data import SHARED_AUDIO

from singerbench.baselines.mfcc import MFCCEmbedder
from singerbench.baselines.speaker import SpeakerEmbedder, partial_slices, resemblyzer_weights_path
from singerbench.embedder import Embedder
from singerbench.errors import UserError

AUDIO = SHARED_AUDIO
SPEAKERS = ["librispeech-198-209-0000", "librispeech-3436-172162-0000", "librispeech-5703-47212-0000"]
SEG = 96000


def load16k(stem: str) -> np.ndarray:
    path = AUDIO / f"{stem}.ogg"
    if not path.is_file():
        pytest.skip(f"shared audio missing: {path}")
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    wav = soxr.resample(wav, sr, 16000).astype(np.float32)
    return wav / np.abs(wav).max()


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    return {s: load16k(s) for s in SPEAKERS}


@pytest.fixture(scope="module")
def speaker() -> SpeakerEmbedder:
    return SpeakerEmbedder()


def test_plugin_attributes():
    for cls, dim, kind in [(MFCCEmbedder, 40, "mixture"), (SpeakerEmbedder, 256, "vocals")]:
        assert issubclass(cls, Embedder)
        assert cls.embedding_dim == dim and cls.input_kind == kind
        assert cls.sample_rate == 16000 and cls.channels == 1 and cls.segment_seconds == 6.0


# ---------------------------------------------------------------- MFCC


def test_mfcc_matches_librosa(speech):
    librosa = pytest.importorskip("librosa")
    from scipy.fft import dct

    wav = speech[SPEAKERS[0]][:SEG]
    mel = librosa.feature.melspectrogram(
        y=wav.astype(np.float64),
        sr=16000,
        n_fft=400,
        hop_length=160,
        n_mels=40,
        fmin=0.0,
        fmax=8000.0,
        center=True,
        pad_mode="constant",
        htk=False,
        norm="slaney",
        power=2.0,
    )
    coeffs = dct(np.log(mel + 1e-6), type=2, norm="ortho", axis=0)[:20]
    expected = np.concatenate([coeffs.mean(axis=1), coeffs.std(axis=1)])
    got = MFCCEmbedder().embed(torch.from_numpy(wav)[None, None])[0].numpy()
    assert got.shape == (40,)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-4)


def test_mfcc_batch_silence_and_determinism():
    model = MFCCEmbedder().eval()
    gen = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 1, SEG, generator=gen) * 0.1
    batch[1] = 0.0
    with torch.inference_mode():
        out = model.embed(batch)
        again = model.embed(batch)
        single = model.embed(batch[2:3])
    assert out.shape == (3, 40) and torch.isfinite(out).all()
    assert torch.equal(out, again)
    torch.testing.assert_close(single[0], out[2], atol=1e-5, rtol=1e-5)
    assert model.weights_id() == "none" and type(model)(**model.config()).embed(batch).shape == (3, 40)
    with pytest.raises(UserError):
        model.embed(torch.zeros(1, 2, SEG))


# ---------------------------------------------------------------- speaker (GE2E)


def test_partial_slices_follow_resemblyzer():
    starts, padded = partial_slices(SEG)
    assert starts == [0, 77, 154, 231, 308, 385, 462] and padded == (462 + 160) * 160
    starts, padded = partial_slices(8000)  # shorter than one window: one zero-padded window
    assert starts == [0] and padded == 160 * 160


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:pkg_resources:UserWarning")
def test_speaker_frontend_matches_resemblyzer(speech, speaker):
    pytest.importorskip("webrtcvad")
    from resemblyzer import audio

    wav = speech[SPEAKERS[1]][:SEG]
    expected = audio.wav_to_mel_spectrogram(wav)
    got = speaker.mel(torch.from_numpy(wav)[None])[0].T.numpy()
    assert got.shape == expected.shape == (601, 40)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def halves(speech, speaker) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Two disjoint 6 s halves of each clip and their embeddings (first halves, then second halves)."""
    assert all(len(speech[s]) >= 2 * SEG for s in SPEAKERS)
    first = np.stack([speech[s][:SEG] for s in SPEAKERS])
    second = np.stack([speech[s][-SEG:] for s in SPEAKERS])
    with torch.inference_mode():
        out = speaker.embed(torch.from_numpy(np.concatenate([first, second]))[:, None])
    return first, second, out


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:pkg_resources:UserWarning")
def test_speaker_equals_resemblyzer_embed_utterance(halves):
    pytest.importorskip("webrtcvad")
    from resemblyzer import VoiceEncoder

    reference = VoiceEncoder(device="cpu", verbose=False)
    first, _, out = halves
    expected = np.stack([reference.embed_utterance(w) for w in first])
    assert out.shape == (6, 256)
    np.testing.assert_allclose(out[:3].numpy(), expected, atol=1e-4)


def test_speaker_separates_speakers(halves):
    # the same speaker's two halves must be closer than any pair of different speakers
    _, _, out = halves
    torch.testing.assert_close(out.norm(dim=1), torch.ones(6))
    a, b = out[:3], out[3:]
    sim = (a @ b.T).numpy()
    for i in range(3):
        others = [sim[i, j] for j in range(3) if j != i] + [sim[j, i] for j in range(3) if j != i]
        assert sim[i, i] > max(others), sim


def test_speaker_batch_independence_silence_determinism(halves, speaker):
    first, _, out = halves
    batch = torch.cat([torch.zeros(1, 1, SEG), torch.from_numpy(first[1:2])[:, None]])
    with torch.inference_mode():
        pair = speaker.embed(batch)
        again = speaker.embed(batch)
    assert pair.shape == (2, 256) and torch.isfinite(pair).all()
    assert torch.equal(pair, again)
    torch.testing.assert_close(pair[1], out[1], atol=1e-5, rtol=1e-5)  # batch of 2 vs batch of 6


def test_speaker_weights_id_and_config(speaker):
    import hashlib

    path = resemblyzer_weights_path()
    assert path.name == "pretrained.pt"
    assert speaker.weights_id() == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    rebuilt = SpeakerEmbedder(**speaker.config())
    assert rebuilt.weights_id() == speaker.weights_id()


def test_speaker_missing_package_or_weights(monkeypatch, tmp_path):
    import importlib.util

    with pytest.raises(UserError, match="not found"):
        SpeakerEmbedder(weights_path=str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(3)}}, bad)
    with pytest.raises(UserError, match="missing"):
        SpeakerEmbedder(weights_path=str(bad))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "resemblyzer" else real(name, *a)
    )
    with pytest.raises(UserError, match=r"pip install 'singerbench\[speaker\]'"):
        SpeakerEmbedder()
