"""SampleCNN, the raw-waveform encoder of CLMR (Spijkervet & Burgoyne, 2021), without its classifier.

Same layer list as ``clmr/models/sample_cnn.py`` (strides all 3), so a CLMR encoder's weights load under
the same keys ``sequential.N.M.*``: index 0 is the stem (Conv1d 1→128, k3 s3, BN, ReLU), 1–9 the blocks
(Conv1d k3 p1, BN, ReLU, MaxPool 3) with outputs 128, 128, 256, 256, 256, 256, 256, 256, 512, and 10 the
last Conv1d 512→512 k3 p1 + BN + ReLU. A 59,049-sample (3^10) mono input leaves one time step: 512-d.
"""

from __future__ import annotations

import torch
from torch import nn

CHUNK_SAMPLES = 59049
HIDDEN = [
    (128, 128),
    (128, 128),
    (128, 256),
    (256, 256),
    (256, 256),
    (256, 256),
    (256, 256),
    (256, 256),
    (256, 512),
]


class SampleCNN(nn.Module):
    """``(B, 1, 59049)`` waveform → ``(B, 512)`` (CLMR's encoder with ``fc`` removed)."""

    out_dim = 512

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[nn.Module] = [
                nn.Sequential(
                    nn.Conv1d(1, 128, kernel_size=3, stride=3, padding=0), nn.BatchNorm1d(128), nn.ReLU()
                )
            ]
            for h_in, h_out in HIDDEN:
                layers.append(
                    nn.Sequential(
                        nn.Conv1d(h_in, h_out, kernel_size=3, stride=1, padding=1),
                        nn.BatchNorm1d(h_out),
                        nn.ReLU(),
                        nn.MaxPool1d(3, stride=3),
                    )
                )
            layers.append(
                nn.Sequential(
                    nn.Conv1d(512, 512, kernel_size=3, stride=1, padding=1), nn.BatchNorm1d(512), nn.ReLU()
                )
            )
            self.sequential = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != CHUNK_SAMPLES:
            raise ValueError(f"SampleCNN takes {CHUNK_SAMPLES}-sample chunks, got {x.shape[-1]}")
        return self.sequential(x).reshape(x.shape[0], -1)
