"""Clones: a voice made to sound synthetic by analysis/resynthesis through a source-filter vocoder.

In the spirit of voice-conversion artefacts: the voice's spectral envelope (its formants, which carry most of
the identity) is measured frame by frame by smoothing the power spectrum over frequency, warped mildly along frequency, and imposed
on a new excitation: a band-limited harmonic pulse train at a mildly shifted pitch for voiced frames, noise
for unvoiced ones, plus a little aspiration noise. The result keeps who is singing but loses the natural
source, phase and fine structure of the recording.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

N_FFT = 1024
HOP = 256
MAX_HARMONICS = 48
F0_MIN, F0_MAX = 60.0, 700.0
SMOOTH_HZ_PER_BIN_FRACTION = 0.03  # smoothing width in bins as a fraction of N_FFT (31 bins, ~480 Hz at 16 kHz)


@dataclass(frozen=True)
class CloneParams:
    """How one clone is processed; recorded in the manifest's ``extra``."""

    pitch_shift: float  # semitones applied by the vocoder
    formant_ratio: float  # >1 moves formants up
    aspiration: float  # level of breath noise in voiced frames, relative to the harmonic part

    def to_dict(self) -> dict:
        return asdict(self)


def _frames(x: np.ndarray) -> np.ndarray:
    pad = np.pad(x, (N_FFT // 2, N_FFT // 2 + HOP))
    n = 1 + (len(pad) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    return pad[idx]


def _window() -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)


def _stft(x: np.ndarray) -> np.ndarray:
    return np.fft.rfft(_frames(x) * _window(), axis=1)


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
    w = _window()
    frames = np.fft.irfft(spec, n=N_FFT, axis=1) * w
    total = N_FFT + HOP * (len(frames) - 1)
    out = np.zeros(total)
    norm = np.zeros(total)
    for i, f in enumerate(frames):
        out[i * HOP : i * HOP + N_FFT] += f
        norm[i * HOP : i * HOP + N_FFT] += w**2
    out /= np.maximum(norm, 1e-8)
    return out[N_FFT // 2 : N_FFT // 2 + length]


def estimate_f0(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame-wise F0 (Hz) and voicing (bool) by normalised autocorrelation, on the STFT's frame grid."""
    fr = _frames(x) * _window()
    spec = np.fft.rfft(fr, n=2 * N_FFT, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :N_FFT]
    wac = np.fft.irfft(np.abs(np.fft.rfft(_window(), n=2 * N_FFT)) ** 2)[:N_FFT]
    r = ac / np.maximum(ac[:, :1], 1e-12) / (wac / wac[0])[None, :]
    lo, hi = int(sr / F0_MAX), min(N_FFT - 1, int(sr / F0_MIN))
    lag = lo + np.argmax(r[:, lo:hi], axis=1)
    rows = np.arange(len(r))
    half = np.maximum(lag // 2, lo)
    better = (r[rows, half] > 0.85 * r[rows, lag]) & (lag // 2 >= lo)
    lag = np.where(better, half, lag)
    strength = r[rows, lag]
    energy = ac[:, 0]
    voiced = (strength > 0.45) & (energy > energy.max() * 1e-4)
    return sr / lag, voiced


def _smooth_envelope(spec: np.ndarray) -> np.ndarray:
    """Log amplitude envelope per frame: the power spectrum smoothed over about 480 Hz (arithmetic mean).

    An arithmetic mean over a few harmonics, unlike a cepstral (geometric) one, is not dragged down by the
    deep valleys of a harmonic comb, so a voice and a synthetic excitation whitened this way share one scale.
    """
    width = max(3, int(round(SMOOTH_HZ_PER_BIN_FRACTION * N_FFT)) | 1)
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    raw = np.abs(spec) ** 2
    half = width // 2
    padded = np.pad(raw, ((0, 0), (half, half)))
    power = sum(kernel[j] * padded[:, j : j + raw.shape[1]] for j in range(width))
    floor = 1e-6 * np.maximum(power.mean(axis=1, keepdims=True), 1e-20)
    return 0.5 * np.log(np.maximum(power, floor))


def vocode(x: np.ndarray, sr: int, params: CloneParams, rng: np.random.Generator) -> np.ndarray:
    """Resynthesise ``x`` (mono) with shifted pitch and warped formants; same length and RMS as ``x``."""
    n = len(x)
    if not np.any(x):
        return x.copy()
    spec = _stft(x)
    f0, voiced = estimate_f0(x, sr)
    m = min(len(f0), len(spec))
    spec, f0, voiced = spec[:m], f0[:m], voiced[:m]
    log_env = _smooth_envelope(spec)
    # formant warp: the new envelope at bin k is the old one at k / ratio
    bins = np.arange(log_env.shape[1])
    src = np.clip(bins / params.formant_ratio, 0, bins[-1])
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, bins[-1])
    frac = src - i0
    log_env = log_env[:, i0] * (1 - frac) + log_env[:, i1] * frac

    # excitation: F0 held through unvoiced frames so the phase runs on smoothly
    f0_held = f0.copy()
    last = 150.0
    for i in range(m):
        if voiced[i]:
            last = f0[i]
        f0_held[i] = last
    f0_new = f0_held * 2.0 ** (params.pitch_shift / 12.0)
    frame_t = np.arange(m) * HOP
    f0_s = np.interp(np.arange(n), frame_t, f0_new)
    phase = np.cumsum(f0_s / sr)
    harm = np.zeros(n)
    for k in range(1, MAX_HARMONICS + 1):
        harm += np.cos(2 * np.pi * k * phase) * (k * f0_s < 0.45 * sr)
    noise = rng.standard_normal(n)

    def whitened(sig: np.ndarray) -> np.ndarray:
        s = _stft(sig)[:m]
        return s / np.exp(_smooth_envelope(s))

    h_spec, n_spec = whitened(harm), whitened(noise)
    v = np.convolve(voiced.astype(float), np.ones(3) / 3, mode="same")[:, None]
    exc = v * (h_spec + params.aspiration * n_spec) + (1 - v) * n_spec
    energy = np.sum(np.abs(spec) ** 2, axis=1)
    gate = (energy > energy.max() * 1e-6)[:, None]
    y = _istft(np.exp(log_env) * exc * gate, n)
    rms_x = np.sqrt(np.mean(x**2))
    rms_y = np.sqrt(np.mean(y**2))
    return y * (rms_x / max(rms_y, 1e-12))
