"""GE2E speaker encoder (resemblyzer 0.1.4's pretrained weights), re-implemented in plain torch.

Why re-implement: importing resemblyzer pulls webrtcvad, pkg_resources and librosa (slow, fragile), and its
``embed_utterance`` embeds one utterance at a time in numpy. Here the same network, frontend and partial
slicing run batched in torch; only ``pretrained.pt`` is read from the installed package (never imported).

Faithful to resemblyzer: 40-bin power mel spectrogram (not log) at 16 kHz, 25 ms window (n_fft 400),
10 ms hop, librosa's Slaney mel with Slaney normalisation, centred STFT with zero padding (the default of
the librosa ≥ 0.10 that resemblyzer runs on here); partial windows of 160 frames placed every
``round(16000 / rate / 160)`` frames (rate 1.3 → 77 frames, about 50 % overlap), the last one kept only if
it covers ``min_coverage`` (0.75) of its window with real audio, the waveform zero-padded to the last
window; a 3-layer LSTM (40 → 256), Linear 256 → 256, ReLU, L2 norm per partial; the utterance embedding is
the L2-normalised mean of the partial embeddings. resemblyzer's ``preprocess_wav`` (volume normalisation
and VAD silence trimming) is *not* applied: the harness gives peak-normalised 6 s segments.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from pathlib import Path

import torch
from torch import nn

from singerbench.baselines.frontend import MelSpectrogram
from singerbench.embedder import Embedder
from singerbench.errors import UserError

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
HIDDEN = 256
LAYERS = 3
INSTALL_HINT = "pip install 'singerbench[speaker]'"


def resemblyzer_weights_path() -> Path:
    """Path of ``pretrained.pt`` inside the installed resemblyzer package, found without importing it."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the 'speaker' model needs the resemblyzer package: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    raise UserError(
        f"resemblyzer is installed but its pretrained.pt is missing; reinstall it: {INSTALL_HINT}"
    )


def file_digest(path: Path, length: int = 16) -> str:
    """First ``length`` hex characters of the file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> tuple[list[int], int]:
    """Mel-frame starts of the partial windows and the padded waveform length, as resemblyzer computes them.

    Mirrors ``VoiceEncoder.compute_partial_slices``: returns ``(starts, padded_samples)`` where each partial
    window is ``mel[start : start + 160]`` of the spectrogram of the waveform zero-padded to
    ``padded_samples`` (never shorter than ``n_samples``).
    """
    if not 0 < min_coverage <= 1:
        raise ValueError("min_coverage must be in (0, 1]")
    n_frames = int(math.ceil((n_samples + 1) / HOP))
    frame_step = int(round((SAMPLE_RATE / rate) / HOP))
    if not 0 < frame_step <= PARTIAL_FRAMES:
        raise ValueError(f"rate {rate} gives a frame step of {frame_step}, outside 1..{PARTIAL_FRAMES}")
    steps = max(1, n_frames - PARTIAL_FRAMES + frame_step + 1)
    starts = list(range(0, steps, frame_step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return starts, max(n_samples, (starts[-1] + PARTIAL_FRAMES) * HOP)


class GE2EEncoder(nn.Module):
    """resemblyzer's ``VoiceEncoder`` network: same module names, so its ``model_state`` loads as is."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``(N, frames, 40)`` power mels → ``(N, 256)`` L2-normalised partial embeddings."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


class SpeakerEmbedder(Embedder):
    """GE2E speaker embedding of a 6 s vocal segment (256-d, L2-normalised), resemblyzer's weights."""

    name = "speaker"
    sample_rate = SAMPLE_RATE
    channels = 1
    input_kind = "vocals"
    segment_seconds = 6.0
    embedding_dim = HIDDEN

    def __init__(
        self, weights_path: str | None = None, rate: float = 1.3, min_coverage: float = 0.75
    ) -> None:
        super().__init__()
        self._weights_path = Path(weights_path) if weights_path else resemblyzer_weights_path()
        self.rate = float(rate)
        self.min_coverage = float(min_coverage)
        partial_slices(SAMPLE_RATE, self.rate, self.min_coverage)  # validates rate and coverage early
        self.mel = MelSpectrogram(
            SAMPLE_RATE, N_FFT, HOP, N_MELS, htk=False, norm="slaney", pad_mode="constant"
        )
        self.encoder = GE2EEncoder()
        self.encoder.load_state_dict(self._read_state(self._weights_path))
        self._weights_id = file_digest(self._weights_path)
        self.eval()

    @staticmethod
    def _read_state(path: Path) -> dict[str, torch.Tensor]:
        if not path.is_file():
            raise UserError(f"speaker weights not found: {path}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say which one
            raise UserError(f"cannot read speaker weights {path}: {exc}") from exc
        state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise UserError(f"{path} is not a resemblyzer checkpoint (no 'model_state')")
        wanted = GE2EEncoder().state_dict()
        missing = [k for k in wanted if k not in state]
        if missing:
            raise UserError(f"{path} is not a resemblyzer checkpoint: missing {missing[:5]}")
        bad = [k for k in wanted if tuple(state[k].shape) != tuple(wanted[k].shape)]
        if bad:
            raise UserError(f"{path}: wrong shapes for {bad[:5]}")
        # similarity_weight/similarity_bias belong to the GE2E training loss, not to the encoder.
        return {k: state[k] for k in wanted}

    def weights_id(self) -> str:
        return self._weights_id

    def config(self) -> dict:
        # weights_path is left out: the weights are in the state dict, a local path must not reach config.json.
        return {"rate": self.rate, "min_coverage": self.min_coverage}

    def partial_mels(self, wav: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Partial-window mels ``(B * P, 160, 40)`` of waveforms ``(B, T)``, with P."""
        starts, padded = partial_slices(wav.shape[-1], self.rate, self.min_coverage)
        if padded > wav.shape[-1]:
            wav = nn.functional.pad(wav, (0, padded - wav.shape[-1]))
        mel = self.mel(wav).transpose(1, 2)  # (B, frames, 40)
        parts = torch.stack([mel[:, s : s + PARTIAL_FRAMES] for s in starts], dim=1)
        return parts.reshape(-1, PARTIAL_FRAMES, N_MELS), len(starts)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.dim() != 3 or batch.shape[1] != 1:
            raise UserError(f"speaker expects mono audio (B, 1, T), got {tuple(batch.shape)}")
        wav = batch[:, 0].float()
        mels, n_parts = self.partial_mels(wav)
        partial = self.encoder(mels).reshape(wav.shape[0], n_parts, HIDDEN)
        mean = partial.mean(dim=1)
        return mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)
