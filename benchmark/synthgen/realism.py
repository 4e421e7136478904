"""Production realism, drawn per track and recorded in its manifest entry: room reverb on the voice, EQ and
compression on the mix, an mp3 round trip.

Everything that touches the mix is applied to both stems with the same linear gains (EQ is a fixed filter,
compression a gain envelope computed from the mix, the codec runs on each stem), so ``vocals + instrumental
== mixture`` still holds exactly after quantisation.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve


@dataclass(frozen=True)
class Realism:
    """The drawn processing of one track (None / 0 where a step is off)."""

    reverb_rt60: float | None = None  # seconds
    reverb_wet: float = 0.0  # wet share of the reverberant voice
    eq_low_db: float = 0.0  # low shelf gain (below ~200 Hz)
    eq_high_db: float = 0.0  # high shelf gain (above ~4 kHz)
    comp_ratio: float | None = None
    comp_threshold_db: float = 0.0  # relative to the mix's 95th-percentile frame level
    mp3_level: float | None = None  # soundfile's compression_level (0 best ... 1 smallest)

    def to_dict(self) -> dict:
        return asdict(self)


def draw(rng: np.random.Generator, reverb: bool, master: bool, mp3_share: float) -> Realism:
    """Draw one track's processing; a step that is off draws nothing (so turning one off keeps the others)."""
    r: dict = {}
    if reverb:
        r["reverb_rt60"] = round(float(rng.uniform(0.2, 1.0)), 3)
        r["reverb_wet"] = round(float(rng.uniform(0.1, 0.4)), 3)
    if master:
        r["eq_low_db"] = round(float(rng.uniform(-4.0, 4.0)), 2)
        r["eq_high_db"] = round(float(rng.uniform(-6.0, 3.0)), 2)
        r["comp_ratio"] = round(float(rng.uniform(1.5, 4.0)), 2)
        r["comp_threshold_db"] = round(float(rng.uniform(-14.0, -4.0)), 2)
    if mp3_share > 0 and rng.random() < mp3_share:
        r["mp3_level"] = round(float(rng.uniform(0.3, 0.9)), 2)
    return Realism(**r)


def reverb(x: np.ndarray, sr: int, p: Realism, rng: np.random.Generator) -> np.ndarray:
    """Room reverb: the dry voice plus its convolution with exponentially decaying noise (RT60 ``p``)."""
    if p.reverb_rt60 is None or not np.any(x):
        return x
    n = int(p.reverb_rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * 10 ** (-3.0 * t / p.reverb_rt60)
    ir[: int(0.01 * sr)] = 0.0  # 10 ms pre-delay
    wet = fftconvolve(x, ir)[: len(x)]
    wet *= np.sqrt(np.mean(x**2)) / max(np.sqrt(np.mean(wet**2)), 1e-12)
    return (1.0 - p.reverb_wet) * x + p.reverb_wet * wet


def _eq_gain(n: int, sr: int, p: Realism) -> np.ndarray:
    f = np.fft.rfftfreq(n, 1.0 / sr)
    low = 1.0 / (1.0 + (f / 200.0) ** 2)  # smooth shelves
    high = 1.0 / (1.0 + (4000.0 / np.maximum(f, 1e-6)) ** 2)
    return 10 ** ((p.eq_low_db * low + p.eq_high_db * high) / 20.0)


def _compressor_gain(mix: np.ndarray, sr: int, p: Realism) -> np.ndarray:
    hop = int(0.02 * sr)
    frames = len(mix) // hop + 1
    padded = np.pad(mix, (0, frames * hop - len(mix)))
    level = 20 * np.log10(np.sqrt(np.mean(padded.reshape(frames, hop) ** 2, axis=1)) + 1e-9)
    thr = np.percentile(level, 95) + p.comp_threshold_db
    over = np.maximum(level - thr, 0.0)
    gain_db = -over * (1.0 - 1.0 / float(p.comp_ratio))
    # attack/release smoothing: one-pole, 3 frames
    smooth = np.copy(gain_db)
    for i in range(1, frames):
        smooth[i] = 0.6 * smooth[i - 1] + 0.4 * gain_db[i]
    g = np.interp(np.arange(len(mix)), np.arange(frames) * hop + hop / 2, 10 ** (smooth / 20.0))
    return g


def _mp3(x: np.ndarray, sr: int, level: float) -> np.ndarray:
    buf = io.BytesIO()
    peak = max(np.abs(x).max(), 1e-12)
    sf.write(buf, x / peak * 0.5, sr, format="MP3", compression_level=level)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float64")
    out = np.zeros(len(x))
    m = min(len(x), len(y))
    out[:m] = y[:m]
    return out * peak / 0.5


def master(v: np.ndarray, a: np.ndarray, sr: int, p: Realism) -> tuple[np.ndarray, np.ndarray]:
    """EQ, compression and the codec on both stems alike (see the module docstring)."""
    if p.comp_ratio is not None:
        g = _eq_gain(len(v), sr, p)
        v = np.fft.irfft(np.fft.rfft(v) * g, n=len(v))
        a = np.fft.irfft(np.fft.rfft(a) * g, n=len(a))
        gain = _compressor_gain(v + a, sr, p)
        v, a = v * gain, a * gain
    if p.mp3_level is not None:
        v, a = _mp3(v, sr, p.mp3_level), _mp3(a, sr, p.mp3_level)
    return v, a
