"""Vocal stems by Demucs: the real code path with a tiny randomly initialised HTDemucs in a local repo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("demucs")

from singerbench.errors import UserError  # noqa: E402
from singerbench.manifest import Manifest, Track  # noqa: E402
from singerbench.segments import SegmentSource  # noqa: E402
from singerbench.separation import DemucsSeparator, Separator  # noqa: E402
from singerbench.store import EmbeddingStore  # noqa: E402


def save_tiny_htdemucs(repo: Path, name: str = "tiny", seed: int = 0) -> None:
    """A small HTDemucs (about 0.1 M parameters, 8 kHz) saved the way demucs' local repos are laid out."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    torch.manual_seed(seed)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"], channels=4, depth=3, nfft=1024, samplerate=8000,
        segment=1, t_layers=1, t_heads=1, dconv_comp=2,
    )
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, False),
               "training_args": {}}
    repo.mkdir(parents=True, exist_ok=True)
    sig = f"tiny{seed:04d}"
    save_with_checksum(package, repo / f"{sig}.th")  # writes SIG-CHECKSUM.th
    (repo / f"{name}.yaml").write_text(f"models: ['{sig}']\n")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demucs-repo")
    save_tiny_htdemucs(path)
    return path


def mixture(path: Path, rate: int, channels: int, seconds: float = 1.3) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.shape)
    x = np.stack([x] * channels, axis=1) if channels == 2 else x
    sf.write(path, x.astype(np.float32), rate)
    return path


def test_vocals_are_separated_once_and_cached(tmp_path, repo):
    sep = DemucsSeparator("tiny", repo=repo, cache_dir=tmp_path / "cache")
    assert isinstance(sep, Separator)
    tracks = [
        Track(id="a", audio=mixture(tmp_path / "a.wav", 16000, 1), singers=("s",), role="train"),
        Track(id="b", audio=mixture(tmp_path / "b.flac", 8000, 2, 0.9), singers=("s",), role="train"),
    ]
    paths = sep.separate_all(tracks, progress=False)
    assert sep.separated == 2
    for t, p in zip(tracks, paths, strict=True):
        assert p.is_file() and p.is_relative_to(tmp_path / "cache" / "separation" / "tiny")
        stem, mix = sf.info(str(p)), sf.info(str(t.audio))
        assert (stem.frames, stem.samplerate, stem.channels) == (mix.frames, mix.samplerate, mix.channels)
    mtime = paths[0].stat().st_mtime_ns
    assert sep.vocals(tracks[0]) == paths[0] and sep.separated == 2  # cached: not separated again
    again = DemucsSeparator("tiny", repo=repo, cache_dir=tmp_path / "cache")
    assert again.separate_all(tracks, progress=False) == paths and again.separated == 0
    assert paths[0].stat().st_mtime_ns == mtime
    # reproducible: the same mixture separated afresh gives the same stem
    fresh = DemucsSeparator("tiny", repo=repo, cache_dir=tmp_path / "other")
    np.testing.assert_array_equal(sf.read(fresh.vocals(tracks[0]))[0], sf.read(paths[0])[0])


def test_separator_identity_follows_weights_and_settings(tmp_path, repo):
    a = DemucsSeparator("tiny", repo=repo).separator_weights_id()
    assert a.startswith("demucs:tiny:")
    assert DemucsSeparator("tiny", repo=repo, shifts=0).separator_weights_id() != a
    other = tmp_path / "repo2"
    save_tiny_htdemucs(other, seed=1)
    assert DemucsSeparator("tiny", repo=other).separator_weights_id() != a


def test_separated_stems_feed_the_store_under_their_own_keys(tmp_path, repo):
    import torch

    from singerbench.embedder import Embedder

    class VocalRms(Embedder):
        name, sample_rate, channels, input_kind, segment_seconds, embedding_dim = "vrms", 8000, 1, "vocals", 1.0, 2

        def embed(self, batch: torch.Tensor) -> torch.Tensor:
            return torch.stack([batch.pow(2).mean((1, 2)), batch.abs().amax((1, 2))], dim=1)

    audio = mixture(tmp_path / "m.wav", 8000, 1)
    man = Manifest(name="d", singers=["s"], tracks=[
        Track(id="m", audio=audio, singers=("s",), role="train", vocal_offsets=(0.0, 1.0))])
    sep = DemucsSeparator("tiny", repo=repo, cache_dir=tmp_path / "cache")
    src = SegmentSource.for_embedder(VocalRms(), separator=sep)
    assert src.stem_id(man.tracks[0]) == sep.separator_weights_id()
    store = EmbeddingStore(tmp_path / "store")
    table = store.embed(VocalRms(), man, src, progress=False)
    assert store.computed == 2 and sep.separated == 1 and table.vectors.shape == (2, 2)
    table2 = store.embed(VocalRms(), man, src, progress=False)
    assert store.computed == 0 and np.array_equal(table.vectors, table2.vectors)
    # the same file given as the dataset's own vocal stem is a different entry
    own = Manifest(name="d", singers=["s"], tracks=[
        Track(id="m", audio=audio, vocals=audio, singers=("s",), role="train", vocal_offsets=(0.0, 1.0))])
    store.embed(VocalRms(), own, src, progress=False)
    assert store.computed == 2


def test_missing_weights_fail_at_once(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    with pytest.raises(UserError, match=r"adefossez/Demucs-mdx_extra/mdx_extra.yaml are not in the Hugging Face cache"):
        DemucsSeparator().separator_weights_id()  # the default is the reference's mdx_extra
    with pytest.raises(UserError, match="does not exist"):
        DemucsSeparator("tiny", repo=tmp_path / "nowhere").load_model()
    (tmp_path / "r").mkdir()
    with pytest.raises(UserError, match=r"has neither other\.yaml nor a other checkpoint"):
        DemucsSeparator("other", repo=tmp_path / "r").load_model()


def test_instrumental_is_the_other_sources_cached_beside_the_vocals(tmp_path, repo):
    sep = DemucsSeparator("tiny", repo=repo, cache_dir=tmp_path / "cache")
    t = Track(id="a", audio=mixture(tmp_path / "a.wav", 16000, 1), singers=("s",), role="train")
    vocals, backing, rate = sep.separate_stems(t.audio)
    assert rate == 16000 and vocals.shape == backing.shape == (1, sf.info(str(t.audio)).frames)
    assert not np.allclose(vocals, backing)
    source = SegmentSource(16000, 1, "instrumental", segment_seconds=1.0, separator=sep)
    source.prepare([t], progress=False)
    path = source.stem_path(t)
    assert path == sep.instrumental_file(t) and path.parent == sep.stem_file(t).parent and sep.separated == 1
    assert sep.stem_file(t).is_file()  # one separation caches both stems
    np.testing.assert_allclose(sf.read(path, always_2d=True)[0].T, backing, atol=2e-4 + 1e-3 * np.abs(backing).max())
    assert source.provenance(t) == f"separator:tiny@{sep.separator_weights_id()}"
    assert source.stem_id(t) == f"{sep.separator_weights_id()}:instrumental"
    assert SegmentSource(16000, 1, "vocals", separator=sep).stem_path(t) == sep.stem_file(t) and sep.separated == 1
