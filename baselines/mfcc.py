"""MFCC statistics: the classic weight-free singer-identification baseline of the related work.

A segment becomes the mean and the standard deviation over time of its MFCCs. Frontend (16 kHz mono):
centred STFT with a 25 ms periodic Hann window (``n_fft`` 400) and a 10 ms hop (160), zero padding at the
edges (librosa's convention), power spectrum, 40 Slaney-scale mel bands with Slaney area normalisation
between 0 Hz and 8 kHz (librosa's defaults), natural log with offset ``1e-6``, orthonormal DCT-II keeping
the first 20 coefficients (c0 included). Output: 20 means followed by 20 population standard deviations.
"""

from __future__ import annotations

import torch

from singerbench.baselines.frontend import MelSpectrogram, dct_matrix
from singerbench.embedder import Embedder
from singerbench.errors import UserError


class MFCCEmbedder(Embedder):
    """Mean and standard deviation of 20 MFCCs over a 6 s mixture segment (40-d, no weights)."""

    name = "mfcc"
    sample_rate = 16000
    channels = 1
    input_kind = "mixture"
    segment_seconds = 6.0
    embedding_dim = 40

    n_fft = 400
    hop_length = 160
    n_mels = 40
    n_mfcc = 20
    f_min = 0.0
    f_max = 8000.0
    log_offset = 1e-6

    def __init__(self) -> None:
        super().__init__()
        self.mel = MelSpectrogram(
            self.sample_rate,
            self.n_fft,
            self.hop_length,
            self.n_mels,
            f_min=self.f_min,
            f_max=self.f_max,
            htk=False,
            norm="slaney",
            pad_mode="constant",
        )
        self.register_buffer("dct", dct_matrix(self.n_mfcc, self.n_mels), persistent=False)

    def mfcc(self, batch: torch.Tensor) -> torch.Tensor:
        """MFCCs ``(B, n_mfcc, frames)`` of mono waveforms ``(B, 1, T)`` or ``(B, T)``."""
        if batch.dim() == 3:
            if batch.shape[1] != 1:
                raise UserError(f"mfcc expects mono audio (B, 1, T), got {tuple(batch.shape)}")
            batch = batch[:, 0]
        log_mel = torch.log(self.mel(batch) + self.log_offset)  # (B, n_mels, frames)
        return torch.matmul(self.dct, log_mel)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        coeffs = self.mfcc(batch)
        mean = coeffs.mean(dim=-1)
        std = coeffs.std(dim=-1, correction=0)
        return torch.cat([mean, std], dim=-1)
