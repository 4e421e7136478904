"""Spectrogram frontends in plain torch (torchaudio does not install beside CPU torch here).

Two mel conventions are needed by the reference plugins, and both are written out here so each plugin's
frontend is reproducible without librosa or torchaudio at run time:

- ``htk=True, norm=None``: torchaudio's ``MelSpectrogram`` defaults (the AST frontend of the paper).
- ``htk=False, norm="slaney"``: librosa's defaults (resemblyzer's GE2E frontend, the MFCC baseline).

Filterbanks are computed in float64 and cast to float32 (as librosa does); they are non-persistent buffers,
so a plugin's ``state_dict`` holds only learned weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

# Slaney's auditory-toolbox mel scale (librosa's default): linear below 1 kHz, logarithmic above.
_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(freqs: np.ndarray, htk: bool) -> np.ndarray:
    """Hertz to mel, HTK formula (``2595 log10(1 + f/700)``) or Slaney's scale."""
    freqs = np.asarray(freqs, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + freqs / 700.0)
    mels = freqs / _SLANEY_F_SP
    log_region = freqs >= _SLANEY_MIN_LOG_HZ
    safe = np.where(log_region, freqs, _SLANEY_MIN_LOG_HZ)
    return np.where(
        log_region, _SLANEY_MIN_LOG_MEL + np.log(safe / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP, mels
    )


def mel_to_hz(mels: np.ndarray, htk: bool) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs = _SLANEY_F_SP * mels
    log_region = mels >= _SLANEY_MIN_LOG_MEL
    return np.where(
        log_region, _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mels - _SLANEY_MIN_LOG_MEL)), freqs
    )


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> torch.Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)``, the same triangles as librosa and torchaudio.

    ``norm="slaney"`` scales each triangle to unit area (librosa's default); ``None`` keeps peak 1
    (torchaudio's default).
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', not {norm!r}")
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_pts = np.linspace(hz_to_mel(f_min, htk), hz_to_mel(f_max, htk), n_mels + 2)
    f_pts = mel_to_hz(mel_pts, htk)
    f_diff = np.diff(f_pts)
    ramps = f_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / f_diff[:-1, None]
    upper = ramps[2:] / f_diff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II as a ``(n_mfcc, n_mels)`` matrix (``scipy.fft.dct(type=2, norm="ortho")`` rows)."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    basis = np.cos(math.pi * k * (2.0 * n + 1.0) / (2.0 * n_mels)) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return torch.from_numpy(basis.astype(np.float32))


class MelSpectrogram(nn.Module):
    """Power mel spectrogram of ``(..., samples)`` waveforms → ``(..., n_mels, frames)``.

    Centred STFT with a periodic Hann window of ``n_fft`` samples, ``|X|^2``, then the mel filterbank.
    ``pad_mode`` is ``"reflect"`` for torchaudio's convention and ``"constant"`` (zeros) for librosa ≥ 0.10.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
        htk: bool = False,
        norm: str | None = "slaney",
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.pad_mode = pad_mode
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.register_buffer(
            "filterbank",
            mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, htk, norm),
            persistent=False,
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        lead = wav.shape[:-1]
        flat = wav.reshape(-1, wav.shape[-1]).float()
        spec = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode=self.pad_mode,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (N, freq, frames)
        mel = torch.matmul(self.filterbank, power)
        return mel.reshape(*lead, self.n_mels, mel.shape[-1])
