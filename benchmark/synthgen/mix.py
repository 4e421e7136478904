"""Mixing and vocal activity: stems that sum exactly to the mixture, and the 6 s segments where the voice sings.

Stems are scaled so that the vocal-to-accompaniment ratio (VAR) of the track is the drawn value, then
quantised to 16-bit integers; the mixture is the integer sum of the two stems, so ``vocals + instrumental ==
mixture`` holds exactly after decoding. Vocal activity is measured on the final vocal stem's energy, so the
listed offsets are true by construction, not estimated from the mixture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SEGMENT_SECONDS = 6.0
#: a 6 s segment is listed when the voice is active for at least this share of its frames
MIN_ACTIVE_SHARE = 0.6
#: activity frames: 20 ms; a frame is active when its RMS is within ACTIVE_DB of the stem's loud frames
FRAME_SECONDS = 0.02
ACTIVE_DB = 35.0
#: candidate segment starts lie on this grid (seconds)
OFFSET_STEP = 0.5
PEAK = 0.89  # mixture peak after normalisation, as a fraction of full scale
FULL_SCALE = 32767


def frame_rms(x: np.ndarray, sr: int) -> np.ndarray:
    """RMS of consecutive non-overlapping 20 ms frames (the last partial frame dropped)."""
    hop = int(round(FRAME_SECONDS * sr))
    n = len(x) // hop
    fr = np.asarray(x[: n * hop], dtype=np.float64).reshape(n, hop)
    return np.sqrt(np.mean(fr**2, axis=1))


def activity(x: np.ndarray, sr: int) -> np.ndarray:
    """Boolean activity per 20 ms frame: RMS within ACTIVE_DB of the 99th-percentile frame RMS."""
    rms = frame_rms(x, sr)
    if not np.any(rms > 0):
        return np.zeros(len(rms), dtype=bool)
    ref = np.percentile(rms, 99)
    return rms > ref * 10 ** (-ACTIVE_DB / 20)


def vocal_offsets(x: np.ndarray, sr: int) -> tuple[float, ...]:
    """Start times of non-overlapping 6 s segments in which the voice is active >= MIN_ACTIVE_SHARE.

    Greedy from the start on a 0.5 s grid: the first qualifying start is taken, the next candidate is the
    first grid point after that segment's end.
    """
    act = activity(x, sr)
    per_seg = int(round(SEGMENT_SECONDS / FRAME_SECONDS))
    per_step = int(round(OFFSET_STEP / FRAME_SECONDS))
    cum = np.concatenate([[0], np.cumsum(act)])
    out: list[float] = []
    i = 0
    while i + per_seg <= len(act):
        if (cum[i + per_seg] - cum[i]) / per_seg >= MIN_ACTIVE_SHARE:
            out.append(round(i * FRAME_SECONDS, 3))
            i += per_seg
            i = -(-i // per_step) * per_step  # next grid point
        else:
            i += per_step
    return tuple(out)


def mix(
    vocals: np.ndarray,
    instrumental: np.ndarray,
    var_db: float,
    sr: int,
    post: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale the vocal stem to ``var_db`` (active-vocal RMS over instrumental RMS), normalise, quantise.

    ``post`` processes the two scaled stems alike before normalisation (the mastering of realism.py).
    Returns int16 arrays (vocals, instrumental, mixture) with mixture == vocals + instrumental exactly.
    """
    n = min(len(vocals), len(instrumental))
    v, a = vocals[:n], instrumental[:n]
    act = activity(v, sr)
    hop = int(round(FRAME_SECONDS * sr))
    mask = np.repeat(act, hop)
    mask = np.concatenate([mask, np.zeros(n - len(mask), dtype=bool)])
    rms_v = np.sqrt(np.mean(v[mask] ** 2)) if mask.any() else np.sqrt(np.mean(v**2))
    rms_a = np.sqrt(np.mean(a**2))
    if rms_v > 0 and rms_a > 0:
        v = v * (10 ** (var_db / 20) * rms_a / rms_v)
    if post is not None:
        v, a = post(v, a)
    peak = np.max(np.abs(v + a))
    scale = PEAK / peak if peak > 0 else 1.0
    # a stem can peak above the mix where the two cancel; it must still fit int16. Capping only then keeps
    # every track that fitted before bit-identical (no new generator version).
    stem_peak = max(np.max(np.abs(v)), np.max(np.abs(a)))
    if stem_peak * scale > 1.0:
        scale = 1.0 / stem_peak
    vq = np.round(v * scale * FULL_SCALE).astype(np.int16)
    aq = np.round(a * scale * FULL_SCALE).astype(np.int16)
    mq = vq.astype(np.int32) + aq.astype(np.int32)
    assert np.abs(mq).max() <= FULL_SCALE
    return vq, aq, mq.astype(np.int16)
