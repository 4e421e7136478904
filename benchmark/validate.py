"""``singerbench validate``: run a plugin on a tiny generated batch and name every contract violation.

The checks are those the embedding store relies on: the output is a floating tensor of shape (B, D) with the
declared D, every value is finite, the same input gives the same output in eval mode, and a segment's
embedding does not depend on what else is in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from singerbench.embedder import Embedder

# Relative tolerance for "same output": loose enough for batched BLAS kernels, tight enough to catch
# dropout left on or batch statistics used at inference.
TOLERANCE = 1e-4


@dataclass
class ValidationReport:
    """What was checked and what failed; ``ok`` when nothing did."""

    model: str
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def probe_batch(embedder: Embedder, batch_size: int = 3, seed: int = 0) -> torch.Tensor:
    """A few seconds of generated, singer-like audio: harmonic tones with vibrato over noise, peak-normalised."""
    rng = np.random.default_rng(seed)
    n = embedder.segment_samples
    t = np.arange(n) / embedder.sample_rate
    waves = []
    for _ in range(batch_size):
        f0 = rng.uniform(110, 440)
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))) / embedder.sample_rate
        x = sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.05 * rng.standard_normal(n)
        x = x / np.abs(x).max()
        waves.append(np.repeat(x[None], embedder.channels, axis=0))
    return torch.from_numpy(np.stack(waves).astype(np.float32))


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = max(float(a.abs().max()), 1e-6)
    return float((a - b).abs().max()) <= TOLERANCE * scale


def validate_embedder(embedder: Embedder, batch_size: int = 3) -> ValidationReport:
    """Check the contract on a generated batch; every problem is described so that its fix is obvious."""
    report = ValidationReport(embedder.plugin_name())
    embedder.eval()
    batch = probe_batch(embedder, batch_size)
    d = embedder.embedding_dim

    def call(x: torch.Tensor) -> torch.Tensor | None:
        try:
            with torch.inference_mode():
                return embedder.embed(x)
        except Exception as e:
            report.problems.append(f"embed() raised {type(e).__name__}: {e} on input of shape {tuple(x.shape)}")
            return None

    report.checks.append(f"embed() on a batch of shape {tuple(batch.shape)}")
    out = call(batch)
    if out is None:
        return report
    if not isinstance(out, torch.Tensor):
        report.problems.append(f"embed() returned {type(out).__name__}, expected a torch.Tensor")
        return report
    report.checks.append("output shape, dtype and values")
    if tuple(out.shape) != (batch_size, d):
        report.problems.append(
            f"wrong output shape: got {tuple(out.shape)} for a batch of {batch_size}, "
            f"expected ({batch_size}, {d}) from embedding_dim={d}"
        )
        return report
    if not out.is_floating_point():
        report.problems.append(f"wrong output dtype: got {out.dtype}, expected a floating dtype")
        return report
    bad = ~torch.isfinite(out)
    if bad.any():
        kinds = [name for name, m in (("NaN", out.isnan()), ("inf", out.isinf())) if m.any()]
        report.problems.append(
            f"output holds {' and '.join(kinds)}: {int(bad.sum())} of {out.numel()} values are not finite"
        )
        return report
    report.checks.append("same input twice gives the same output (eval mode)")
    again = call(batch)
    if again is not None and not _close(out, again):
        report.problems.append(
            "not deterministic: the same input gave a different output in eval mode "
            "(dropout or randomness left on at inference?)"
        )
    report.checks.append("a segment's embedding does not depend on its batch")
    alone = call(batch[:1])
    if alone is not None and tuple(alone.shape) == (1, d) and not _close(out[:1], alone):
        report.problems.append(BATCH_DEPENDENCE)
    return report


BATCH_DEPENDENCE = (
    "batch-size dependence: the first segment embedded alone differs from the same segment in a batch "
    "(batch statistics used at inference, or normalisation across the batch?)"
)


def batch_dependence(embedder: Embedder, batch: torch.Tensor, out: torch.Tensor) -> str | None:
    """The check ``validate`` makes, on a batch already embedded as ``out``: the problem, or None.

    ``run`` calls it on its first computed batch, so a batch-dependent plugin is refused before its
    embeddings are stored; the cost is one extra one-segment call.
    """
    with torch.inference_mode():
        alone = embedder.embed(batch[:1])
    if not isinstance(alone, torch.Tensor) or tuple(alone.shape) != tuple(out[:1].shape):
        return f"embed() of one segment returned {getattr(alone, 'shape', type(alone).__name__)}, not (1, D)"
    return None if _close(out[:1].float(), alone.float()) else BATCH_DEPENDENCE
