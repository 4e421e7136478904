"""Contrastive losses for the training recipe: NT-Xent, the loss of SimCLR that the paper trains with."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from singerbench.errors import UserError


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy over the 2B views of B positive pairs.

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; every other of the 2B - 2 views in the
    batch is a negative. Embeddings are L2-normalised here, so callers may pass raw projector outputs. The
    result is the mean over all 2B anchors, which makes it symmetric in the order of the two views.
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise UserError(
            f"nt_xent needs two (B, D) tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 2:
        raise UserError("nt_xent needs at least 2 pairs per batch (a batch of 1 has no negatives)")
    if temperature <= 0:
        raise UserError(f"nt_xent temperature must be positive, got {temperature}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)
    logits = z @ z.T / temperature
    eye = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))  # a view is never its own negative
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, targets)
