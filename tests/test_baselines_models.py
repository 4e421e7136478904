"""AST-small (vocal/mixture/hybrid) and CLMR's SampleCNN: shapes, frontend, determinism, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from singerbench.baselines.ast_encoder import (
    ASTEncoder,
    ASTProjector,
    HybridEmbedder,
    MixtureEmbedder,
    VocalEmbedder,
)
from singerbench.baselines.clmr import CLMREmbedder, chunk_starts, load_clmr_checkpoint
from singerbench.baselines.samplecnn import SampleCNN
from singerbench.embedder import Embedder
from singerbench.errors import UserError

SMALL = {"depth": 2, "width": 64, "heads": 2, "embedding_dim": 96}


def noise(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def reference_log_mel(wav: np.ndarray) -> np.ndarray:
    """torchaudio's MelSpectrogram defaults written out in numpy: (128, 240) log-mel of one channel."""
    sr, n_fft, hop, n_mels = 16000, 800, 400, 128
    padded = np.pad(wav.astype(np.float64), n_fft // 2, mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(n_frames)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (frames, freqs)

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = hz(np.linspace(mel(0.0), mel(sr / 2), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    assert n_frames == 241
    return np.log(fb @ power.T + 1e-10)[:, :240]


# ---------------------------------------------------------------- AST


def test_ast_plugin_attributes():
    for cls, name, kind in [
        (VocalEmbedder, "vocal", "vocals"),
        (MixtureEmbedder, "mixture", "mixture"),
        (HybridEmbedder, "hybrid", "mixture"),
    ]:
        assert issubclass(cls, Embedder) and cls.name == name and cls.input_kind == kind
        assert (cls.sample_rate, cls.channels, cls.segment_seconds, cls.embedding_dim) == (
            16000,
            2,
            6.0,
            2048,
        )


def test_ast_frontend_matches_numpy_reference():
    wav = noise((1, 2, 96000), seed=1)
    wav[0, 1] = torch.sin(torch.arange(96000) * 2 * np.pi * 440 / 16000) * 0.5
    spec = ASTEncoder(**SMALL).frontend(wav)
    assert spec.shape == (1, 2, 128, 240)
    for ch in range(2):
        expected = reference_log_mel(wav[0, ch].numpy())
        got = spec[0, ch].numpy()
        # float32 STFT vs float64 reference: bins more than 70 dB below the peak are float32 rounding noise,
        # so those are compared in power (absolute), the rest in log.
        loud = expected > expected.max() - np.log(1e7)
        assert loud.sum() >= 240  # the sine channel is loud in a few bins only
        np.testing.assert_allclose(got[loud], expected[loud], atol=2e-3, rtol=1e-4)
        np.testing.assert_allclose(
            np.exp(got), np.exp(expected), rtol=1e-3, atol=1e-7 * np.exp(expected.max())
        )


def test_ast_paper_size_shapes_and_determinism():
    model = VocalEmbedder(seed=3)
    n_params = sum(p.numel() for p in model.parameters())
    assert 20e6 < n_params < 25e6  # ViT-small blocks + patch conv + 384→2048 head
    assert model.encoder.pos_embed.shape == (1, 121, 384)
    batch = noise((2, 2, 96000))
    batch[0] = 0.0  # silence
    with torch.inference_mode():
        out = model.embed(batch)
    assert out.shape == (2, 2048) and torch.isfinite(out).all()


def test_ast_determinism_and_batch_independence():
    model = VocalEmbedder(**SMALL)
    batch = noise((3, 2, 96000), seed=2)
    batch[0] = 0.0
    with torch.inference_mode():
        out = model.embed(batch)
        again = model.embed(batch)
        single = model.embed(batch[2:3])
    assert out.shape == (3, 96) and torch.isfinite(out).all()
    assert torch.equal(out, again)
    torch.testing.assert_close(single[0], out[2], atol=1e-5, rtol=1e-5)


def test_ast_seeded_init_config_and_weights_id():
    a, b, c = (
        MixtureEmbedder(**SMALL, seed=0),
        MixtureEmbedder(**SMALL, seed=0),
        MixtureEmbedder(**SMALL, seed=1),
    )
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["encoder.head.weight"], sc["encoder.head.weight"])
    assert a.weights_id().startswith("random-init/2:0") and a.weights_id() != c.weights_id()
    assert a.embedding_dim == 96
    rebuilt = HybridEmbedder(**a.config())
    rebuilt.load_state_dict(sa)  # the loader's path: cls(**config) then load_state_dict, strict
    rebuilt._weights_id = "sha256:0123456789abcdef"
    assert rebuilt.weights_id() == "sha256:0123456789abcdef"
    x = noise((2, 2, 96000))
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt.embed(x), a.embed(x))
    assert not any("window" in k or "filterbank" in k for k in sa)  # frontend constants are not weights
    trained = VocalEmbedder.from_encoder(c.encoder, "hf:me/vocal@abc")
    assert trained.weights_id() == "hf:me/vocal@abc" and trained.config() == c.config()


def test_ast_rejects_wrong_input():
    model = VocalEmbedder(**SMALL)
    with pytest.raises(UserError):
        model.embed(torch.zeros(1, 1, 96000))
    with pytest.raises(UserError):
        model.embed(torch.zeros(1, 2, 48000))


def test_ast_projector():
    proj = ASTProjector(96, 32, 48)
    out = proj(noise((4, 96)))
    assert out.shape == (4, 48)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    assert proj.net[-1].bias is None and ASTProjector().net[0].in_features == 2048


# ---------------------------------------------------------------- CLMR / SampleCNN


def test_samplecnn_shape_and_keys():
    model = SampleCNN().eval()
    with torch.inference_mode():
        out = model(noise((2, 1, 59049)))
    assert out.shape == (2, 512)
    keys = model.state_dict().keys()
    assert "sequential.0.0.weight" in keys and "sequential.10.1.running_var" in keys
    assert model.sequential[9][0].out_channels == 512 and len(model.sequential) == 11


def test_clmr_chunking_and_plugin():
    assert chunk_starts(132300) == [0, 36625, 73251]
    assert chunk_starts(59049) == [0] and chunk_starts(1000) == [0]
    model = CLMREmbedder(seed=0)
    assert (model.sample_rate, model.channels, model.embedding_dim, model.input_kind) == (
        22050,
        1,
        512,
        "mixture",
    )
    assert model.weights_id() == "random-init:0"
    batch = noise((2, 1, 132300))
    batch[0] = 0.0
    with torch.inference_mode():
        out = model.embed(batch)
        single = model.embed(batch[1:2])
        chunks = model.encoder(torch.stack([batch[1, :, s : s + 59049] for s in [0, 36625, 73251]]))
    assert out.shape == (2, 512) and torch.isfinite(out).all()
    torch.testing.assert_close(single[0], out[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], chunks.mean(dim=0), atol=1e-5, rtol=1e-5)


def _trained_like() -> SampleCNN:
    model = SampleCNN(seed=7)
    for m in model.modules():  # non-default BN statistics, so a wrong load is visible
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_clmr_checkpoint_forms(tmp_path):
    source = _trained_like()
    state = source.state_dict()
    plain = {f"encoder.{k}": v for k, v in state.items()}
    plain["projector.0.weight"] = torch.zeros(512, 512)
    torch.save(plain, tmp_path / "clmr_checkpoint_10000.pt")
    lightning = {
        "epoch": 3,
        "pytorch-lightning_version": "1.3.0",
        "state_dict": {
            **{f"model.encoder.{k}": v for k, v in state.items()},
            "model.projector.0.weight": torch.zeros(512, 512),
        },
    }
    torch.save(lightning, tmp_path / "epoch=3.ckpt")
    for name in ["clmr_checkpoint_10000.pt", "epoch=3.ckpt"]:
        loaded = load_clmr_checkpoint(tmp_path / name)
        assert list(loaded) == list(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)
    plugin = CLMREmbedder(checkpoint=str(tmp_path / "epoch=3.ckpt"))
    assert plugin.weights_id().startswith("clmr-sha256:") and plugin.config() == {"seed": 0}
    x = noise((1, 1, 59049))
    with torch.inference_mode():
        torch.testing.assert_close(plugin.embed(x), source.eval()(x))


def test_clmr_checkpoint_errors_name_the_key(tmp_path):
    state = {f"encoder.{k}": v for k, v in SampleCNN().state_dict().items()}
    cases = {
        "missing": (
            {k: v for k, v in state.items() if k != "encoder.sequential.4.1.weight"},
            "sequential.4.1.weight",
        ),
        "extra": ({**state, "encoder.sequential.11.0.weight": torch.zeros(1)}, "sequential.11.0.weight"),
        "shape": ({**state, "encoder.sequential.0.0.weight": torch.zeros(64, 1, 3)}, "sequential.0.0.weight"),
    }
    for name, (bad, key) in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(bad, path)
        with pytest.raises(UserError, match=key.replace(".", r"\.")):
            load_clmr_checkpoint(path)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        load_clmr_checkpoint(tmp_path / "garbage.pt")
    with pytest.raises(UserError, match="not found"):
        load_clmr_checkpoint(tmp_path / "absent.pt")
    import argparse

    torch.save({"hparams": argparse.Namespace(lr=1.0), **state}, tmp_path / "pickled.pt")
    with pytest.raises(UserError, match="trusted=True"):
        load_clmr_checkpoint(tmp_path / "pickled.pt")
    assert len(load_clmr_checkpoint(tmp_path / "pickled.pt", trusted=True)) == len(state)
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="no CLMR encoder weights"):
        CLMREmbedder(checkpoint=str(tmp_path / "foreign.pt"))
