"""Vocal activity detection on 3 s segments, for mixtures and vocal stems, with no downloadable weights.

The paper kept tracks vocal in at least half of their 3 s segments and embedded only 6 s segments with the
voice active; it used a small classifier of 3 s segments. :func:`vocal_offsets` does both (the track rule:
:data:`MIN_VOCAL_SHARE`). This one is an ensemble of small MLPs on signal
statistics of each segment (log-mel level and spread, voice-band flux, syllabic modulation, flatness, level
relative to the track, cepstral pitch behaviour, how the spectral shape and the partials move: a voice wavers
and glides where keys and organ pipes hold; the same relative to the track's median segment are computed but
not read by the shipped fit), fit on segments with exact ground truth (see :func:`train_vad`). Its weights
are a small JSON file in the package (``vad_weights.json``, with its training corpus and measured scores);
the decision threshold :data:`DEFAULT_THRESHOLD` is on the output probability.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from singerbench.errors import UserError

SR = 16000
N_FFT = 512
HOP = 160
N_MELS = 40
WEIGHTS_PATH = Path(__file__).with_name("vad_weights.json")
#: Probability above which a 3 s segment counts as vocal (0.6, not 0.5: fewer instrumental segments flagged
#: for a point of recall; chosen on the scored corpora, see docs/datasets.md).
DEFAULT_THRESHOLD = 0.6
#: Ground truth from a vocal stem: a 10 ms frame is voiced within this many dB of the stem's loudest frame,
GT_FRAME_DB = 35.0
#: and a 3 s segment is vocal when at least this share of its frames is voiced.
GT_MIN_SHARE = 0.25


def read_mono(path: Path | str, sr: int = SR) -> tuple[np.ndarray, int]:
    """Decode an audio file to mono float32 at ``sr`` (unreadable audio is a UserError)."""
    try:
        wave, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise UserError(f"cannot decode audio {path}: {e}") from None
    mono = wave.mean(axis=1)
    if file_sr != sr:
        mono = soxr.resample(mono, file_sr, sr).astype(np.float32)
    return mono, sr


@lru_cache(maxsize=2)
def _mel_fb(sr: int) -> np.ndarray:
    """HTK mel filterbank (N_MELS, N_FFT // 2 + 1) between 60 Hz and 7.6 kHz."""

    def hz2mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, N_FFT // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(60.0), hz2mel(min(7600.0, sr / 2)), N_MELS + 2))
    fb = np.zeros((N_MELS, freqs.size))
    for i in range(N_MELS):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    return fb


def _power_spec(wave: np.ndarray) -> np.ndarray:
    """|STFT|^2, frames x bins (Hann, 32 ms window, 10 ms hop)."""
    if wave.size < N_FFT:
        wave = np.pad(wave, (0, N_FFT - wave.size))
    n = 1 + (wave.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    frames = wave[idx] * np.hanning(N_FFT).astype(np.float32)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


#: base statistics per segment; :func:`segment_features` appends :data:`N_RELATIVE` of them relative to the track
N_BASE = 42
#: base statistics also given relative to the track's median segment (a voice stands out from its backing):
#: all but the levels, which are relative already (19, 25) or absolute (24)
RELATIVE = tuple(i for i in range(N_BASE) if i not in (19, 24, 25))
N_RELATIVE = len(RELATIVE)
#: how many statistics :func:`segment_features` computes per segment
N_FEATURES = N_BASE + N_RELATIVE
#: bump when :func:`segment_features` changes: cached features (``file_features``) of another version are stale
FEATURE_VERSION = "4"
#: a segment quieter than this (RMS, dB re full scale, before any normalisation) is never vocal
SILENCE_DBFS = -55.0
#: pitch movement is measured over this many 10 ms frames (a 5.5 Hz vibrato moves about 25 cents in 40 ms)
PITCH_LAG = 4
#: a voiced frame's pitch "holds" when it moved at most this many cents over PITCH_LAG frames
PITCH_HOLD_CENTS = 5.0


def _pitch_track(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, cepstral peak prominence and the pitch (cents re 1 Hz) of the cepstral peak in 80-400 Hz,
    refined between quefrency samples by a parabola (an integer quefrency is 20 cents apart at 200 Hz)."""
    cep = np.fft.irfft(np.log(p + 1e-10), axis=1)
    lo, hi = SR // 400, SR // 80
    band = cep[:, lo:hi]
    k = np.clip(band.argmax(axis=1), 1, band.shape[1] - 2)
    cpp = band.max(axis=1) - np.median(band, axis=1)
    rows = np.arange(len(band))
    y0, y1, y2 = band[rows, k - 1], band[rows, k], band[rows, k + 1]
    den = y0 - 2 * y1 + y2
    off = np.clip(np.where(np.abs(den) > 1e-12, 0.5 * (y0 - y2) / np.where(den == 0, 1, den), 0.0), -0.5, 0.5)
    return cpp, 1200.0 * np.log2(SR / (k + lo + off))


def _pitch_stats(cpp: np.ndarray, cents: np.ndarray) -> list[float]:
    """Voicing share and how the pitch moves between voiced frames (voices glide and waver; keys hold still)."""
    voiced = cpp > 0.25
    both = voiced[PITCH_LAG:] & voiced[:-PITCH_LAG]
    d = np.abs(cents[PITCH_LAG:] - cents[:-PITCH_LAG])[both] if both.any() else np.full(1, 1200.0)
    return [float(voiced.mean()), float(cpp.mean()), float(np.percentile(cpp, 90)),
            float((d <= PITCH_HOLD_CENTS).mean()), float(((d > PITCH_HOLD_CENTS) & (d < 100)).mean()),
            float((d >= 100).mean()), float(np.log10(np.median(d) + 1.0))]


def _spectral_motion(p: np.ndarray, band: np.ndarray) -> list[float]:
    """How the voice band's spectral *shape* moves, with the frame's overall level taken out (drums and
    rhythmic chords move the level; a voice's vibrato, glides and formants move its shape), over 40 ms and as
    3-8 Hz modulation, on the bins within 30 dB of the frame's strongest."""
    lp = np.log(p[:, band] + 1e-8)
    shape = lp - lp.mean(axis=1, keepdims=True)
    strong = lp > lp.max(axis=1, keepdims=True) - np.log(10.0) * 3.0
    pair = strong[PITCH_LAG:] & strong[:-PITCH_LAG]
    moved = float((np.abs(shape[PITCH_LAG:] - shape[:-PITCH_LAG]) * pair).sum() / (pair.sum() + 1e-9))
    centred = shape - shape.mean(axis=0)
    spec = np.abs(np.fft.rfft(centred * np.hanning(len(centred))[:, None], axis=0)) ** 2
    mf = np.fft.rfftfreq(len(centred), d=HOP / SR)
    share = spec[(mf >= 3) & (mf <= 8)].sum(axis=0) / (spec[(mf >= 0.5) & (mf <= 30)].sum(axis=0) + 1e-12)
    weight = p[:, band].mean(axis=0)
    return [moved, float((share * weight).sum() / (weight.sum() + 1e-12))]


#: partial tracking: a fine spectrum (64 ms window, 15.6 Hz bins) every 20 ms, peaks followed over 40 ms
FM_FFT, FM_HOP, FM_LAG = 1024, 320, 2
#: a partial moved when its frequency changed by more than this over FM_LAG hops, and held when by at most
#: FM_HOLD_CENTS; a change over FM_MATCH_CENTS is another note (not matched)
FM_MOVE_CENTS, FM_HOLD_CENTS, FM_MATCH_CENTS = 5.0, 2.0, 60.0


def _partial_motion(raw: np.ndarray) -> list[float]:
    """How the partials (spectral peaks, 150-3000 Hz, within 40 dB of the frame's strongest) move in frequency:
    power-weighted shares that moved (vibrato, glides), held still (keys, organ pipes, plucked strings) or
    found no partner (onsets, consonants). The frequency of a peak is refined by a parabola on its log power."""
    if raw.size < FM_FFT + FM_HOP * FM_LAG:
        return [0.0, 0.0, 0.0]
    n = 1 + (raw.size - FM_FFT) // FM_HOP
    idx = np.arange(FM_FFT)[None, :] + FM_HOP * np.arange(n)[:, None]
    lp = np.log(np.abs(np.fft.rfft(raw[idx] * np.hanning(FM_FFT), axis=1)) ** 2 + 1e-12)
    lo, hi = int(150 * FM_FFT / SR), int(3000 * FM_FFT / SR)
    c, left, right = lp[:, lo:hi], lp[:, lo - 1 : hi - 1], lp[:, lo + 1 : hi + 1]
    peak = (c > left) & (c >= right) & (c > c.max(axis=1, keepdims=True) - np.log(10.0) * 4.0)
    den = left - 2 * c + right
    off = np.where(peak, 0.5 * (left - right) / np.where(den == 0, -1.0, den), 0.0)
    cents = np.where(peak, 1200.0 * np.log2((np.arange(lo, hi) + off) * SR / FM_FFT), np.inf)
    a, b = cents[:-FM_LAG], cents[FM_LAG:]
    moved = np.full(a.shape, np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf: no peak in either frame
        for shift in range(-2, 3):
            d = np.abs(a - np.roll(b, shift, axis=1))
            moved = np.minimum(moved, np.where(np.isfinite(d), d, np.inf))
    weight = np.where(peak[:-FM_LAG], np.exp(c[:-FM_LAG] - c[:-FM_LAG].max(axis=1, keepdims=True)), 0.0)
    total = weight.sum() + 1e-12
    matched = moved < FM_MATCH_CENTS
    return [float((weight * (matched & (moved > FM_MOVE_CENTS))).sum() / total),
            float((weight * (matched & (moved <= FM_HOLD_CENTS))).sum() / total),
            float((weight * ~matched).sum() / total)]


def segment_features(wave: np.ndarray, sr: int, seconds: float = 3.0) -> np.ndarray:
    """(n_segments, N_FEATURES) statistics of consecutive ``seconds``-long segments of a mono waveform.

    Spectral shape and its motion, syllabic modulation, flatness and pitch behaviour are computed on the
    track peak-normalised (level-free); the absolute level of the segment and its level relative to the
    track's loudest and median segments are kept as features too, so silence and faint noise are told apart.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=0) if wave.shape[0] <= 2 else wave.mean(axis=1)
    if sr != SR:
        wave = soxr.resample(wave, sr, SR).astype(np.float32)
    seg = int(round(seconds * SR))
    n_seg = wave.size // seg
    if n_seg == 0:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    peak = float(np.max(np.abs(wave))) or 1.0
    fb = _mel_fb(SR)
    freqs = np.linspace(0, SR / 2, N_FFT // 2 + 1)
    band = (freqs >= 300) & (freqs <= 4000)
    per_seg = []
    energies = []
    for k in range(n_seg):
        raw = wave[k * seg : (k + 1) * seg].astype(np.float64)
        abs_db = 10 * np.log10(np.mean(raw**2) + 1e-12)
        p = _power_spec((raw / peak).astype(np.float32))
        mel = np.log(p @ fb.T + 1e-8)  # frames x mels
        groups = mel.reshape(mel.shape[0], 8, N_MELS // 8).mean(axis=2)
        energies.append(float(np.log(p.sum(axis=1).mean() + 1e-10)))
        lp = np.log(p[:, band] + 1e-8)
        flux = np.maximum(np.diff(lp, axis=0), 0).mean() if lp.shape[0] > 1 else 0.0
        env = np.log(p[:, band].sum(axis=1) + 1e-8)
        env = env - env.mean()
        spec = np.abs(np.fft.rfft(env * np.hanning(env.size))) ** 2
        mf = np.fft.rfftfreq(env.size, d=HOP / SR)
        syll = spec[(mf >= 2) & (mf <= 8)].sum() / (spec[(mf >= 0.5) & (mf <= 30)].sum() + 1e-10)
        flat = np.exp(np.mean(np.log(p[:, band] + 1e-10), axis=1)) / (p[:, band].mean(axis=1) + 1e-10)
        cep = np.fft.irfft(mel - mel.mean(axis=1, keepdims=True), axis=1)[:, 1:13]
        motion = np.abs(np.diff(cep, axis=0)).mean() if cep.shape[0] > 1 else 0.0
        frame_e = np.log(p.sum(axis=1) + 1e-10)
        quiet = float(np.mean(frame_e < frame_e.max() - np.log(10.0) * 3.0))
        cpp, cents = _pitch_track(p)
        centroid = float((p @ freqs).sum() / (p.sum() + 1e-10)) / 1000.0
        per_seg.append(
            [*groups.mean(axis=0) - groups.mean(), *groups.std(axis=0), flux, syll, float(flat.mean()),
             0.0, motion, quiet, float(groups.std(axis=1).mean()), float(np.std(env)),
             abs_db / 10.0, 0.0, float(np.log10(flat.mean() + 1e-6)), float(np.std(np.log(flat + 1e-6))),
             centroid, float(np.diff(mel, axis=0).std()) if mel.shape[0] > 1 else 0.0,
             *_pitch_stats(cpp, cents), *_spectral_motion(p, band), *_partial_motion(raw / peak)]
        )
    feats = np.asarray(per_seg, dtype=np.float64)
    e = np.asarray(energies)
    feats[:, 19] = (e - e.max()) / np.log(10.0)  # loudness relative to the loudest segment, in bels
    feats[:, 25] = (e - np.median(e)) / np.log(10.0)  # ...and to the track's median segment
    relative = feats[:, RELATIVE] - np.median(feats[:, RELATIVE], axis=0)
    return np.hstack([feats, relative]).astype(np.float32)


def _load_weights(path: Path = WEIGHTS_PATH) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"VAD weights {path} cannot be read ({e}); reinstall singerbench") from None
    return doc


@lru_cache(maxsize=2)
def _weights(path: Path = WEIGHTS_PATH) -> dict:
    doc = _load_weights(path)
    if doc.get("feature_version") != FEATURE_VERSION or max(doc.get("features", [N_FEATURES])) >= N_FEATURES:
        raise UserError(f"VAD weights {path} do not fit this version's features (version {FEATURE_VERSION}); "
                        "refit them with python -m singerbench.vad")
    members = [{k: np.asarray(v) for k, v in m.items()} for m in doc["members"]]
    return {**doc, "mean": np.asarray(doc["mean"]), "scale": np.asarray(doc["scale"]), "members": members}


def doc_weights(path: Path) -> dict:
    """The weights at ``path``, read afresh (a refit rewrites the file under the same name)."""
    _weights.cache_clear()
    return _weights(Path(path))


def _predict(feats: np.ndarray, weights: dict | None = None) -> np.ndarray:
    """Vocal probability per row of ``feats``: the mean of the ensemble's small MLPs (one tanh layer each)."""
    w = weights if weights is not None else _weights()
    z = (feats[:, np.asarray(w["features"], dtype=int)] - np.asarray(w["mean"])) / np.asarray(w["scale"])
    probs = []
    for m in w["members"]:
        h = np.tanh(z @ np.asarray(m["hidden"]) + np.asarray(m["hidden_bias"]))
        logit = h @ np.asarray(m["coef"]) + float(m["intercept"])
        probs.append(1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50))))
    prob = np.mean(probs, axis=0) if probs else np.zeros(len(feats))
    return np.where(feats[:, 24] * 10.0 < SILENCE_DBFS, 0.0, prob)  # silence is never vocal


def detect_vocal_segments(
    wave: np.ndarray, sr: int, seconds: float = 3.0, threshold: float | None = None
) -> np.ndarray:
    """Vocal probability of each consecutive ``seconds`` segment; with ``threshold``, 0/1 decisions instead.

    A trailing part shorter than one segment is not scored.
    """
    if sr <= 0 or seconds <= 0:
        raise UserError(f"VAD needs a positive sample rate and segment length, got {sr} Hz, {seconds} s")
    probs = _predict(segment_features(wave, sr, seconds)) if np.size(wave) else np.zeros(0)
    if threshold is None:
        return probs
    return (probs >= threshold).astype(np.int8)


#: The paper's track-level rule (Desblancs et al. 2024, "From Real to Cloned Singer Identification", section on
#: data): a track is kept only when its voice is active in at least half of its 3 s segments. It is what keeps
#: an instrumental track out when the segment detector errs on a few of its segments (the held-out organ_swing
#: backing, the real instrumental Vibe Ace: docs/datasets.md, "Vocal activity detection").
MIN_VOCAL_SHARE = 0.5


def vocal_share(flags: np.ndarray | Sequence[int]) -> float:
    """Share of a track's segments flagged vocal (0 for a track too short for one segment)."""
    flags = np.asarray(flags)
    return float(flags.mean()) if flags.size else 0.0


def track_is_vocal(flags: np.ndarray | Sequence[int], min_share: float = MIN_VOCAL_SHARE) -> bool:
    """The track rule: vocal in at least ``min_share`` of its segments (and at least one of them)."""
    flags = np.asarray(flags)
    return bool(flags.any()) and vocal_share(flags) >= min_share


def offsets_source(threshold: float = DEFAULT_THRESHOLD, min_share: float = MIN_VOCAL_SHARE) -> str:
    """How VAD offsets were made, for a result's provenance: ``vad@<threshold>,share>=<min_share>``."""
    return f"vad@{threshold:g},share>={min_share:g}"


@dataclass(frozen=True)
class TrackVocals:
    """What the detector found in one track: its segment flags, the share vocal, and the 6 s offsets (none
    when the track fails the track rule)."""

    flags: tuple[int, ...]
    min_share: float
    offsets: tuple[float, ...]

    @property
    def share(self) -> float:
        return vocal_share(self.flags)

    @property
    def vocal(self) -> bool:
        return track_is_vocal(self.flags, self.min_share)

    def why_empty(self, vad_seconds: float = 3.0) -> str:
        """Why no offsets came out, in a few words (empty when there are offsets)."""
        if self.offsets:
            return ""
        n, k = len(self.flags), int(sum(self.flags))
        if n == 0:
            return f"shorter than one {vad_seconds:g} s segment"
        if not self.vocal and k:
            return (f"vocal in {k} of {n} {vad_seconds:g} s segments ({self.share:.0%}), under the "
                    f"{self.min_share:.0%} the track rule needs")
        if not k:
            return f"vocal in none of its {n} {vad_seconds:g} s segments"
        return f"vocal in {k} of {n} {vad_seconds:g} s segments, never two in a row"


def offsets_from_flags(flags: np.ndarray | Sequence[int], per: int, vad_seconds: float = 3.0) -> list[float]:
    """Start times of non-overlapping runs of ``per`` consecutive vocal segments."""
    flags = np.asarray(flags)
    out, k = [], 0
    while k + per <= len(flags):
        if flags[k : k + per].all():
            out.append(round(k * vad_seconds, 3))
            k += per
        else:
            k += 1
    return out


def track_vocals(
    path: Path | str,
    segment_seconds: float = 6.0,
    threshold: float = DEFAULT_THRESHOLD,
    vad_seconds: float = 3.0,
    min_share: float = MIN_VOCAL_SHARE,
) -> TrackVocals:
    """Run the detector on a file: segment flags, and the ``segment_seconds`` offsets made only of vocal
    ``vad_seconds`` segments, kept only when the track passes the track rule (:data:`MIN_VOCAL_SHARE`)."""
    if segment_seconds < vad_seconds or segment_seconds % vad_seconds:
        raise UserError(f"segment length {segment_seconds} s must be a multiple of the VAD's {vad_seconds} s")
    if not 0.0 <= min_share <= 1.0:
        raise UserError(f"the VAD's minimum vocal share must lie in [0, 1], got {min_share}")
    wave, sr = read_mono(path)
    flags = detect_vocal_segments(wave, sr, vad_seconds, threshold)
    offs = offsets_from_flags(flags, int(segment_seconds // vad_seconds), vad_seconds)
    kept = tuple(offs) if track_is_vocal(flags, min_share) else ()
    return TrackVocals(tuple(int(f) for f in flags), min_share, kept)


def vocal_offsets(
    path: Path | str,
    segment_seconds: float = 6.0,
    threshold: float = DEFAULT_THRESHOLD,
    vad_seconds: float = 3.0,
    min_share: float = MIN_VOCAL_SHARE,
) -> list[float]:
    """Start times of non-overlapping ``segment_seconds`` segments made only of vocal ``vad_seconds`` segments;
    none for a track vocal in fewer than ``min_share`` of its segments (the track rule)."""
    return list(track_vocals(path, segment_seconds, threshold, vad_seconds, min_share).offsets)


def default_offsets(path: Path | str) -> tuple[tuple[float, ...], str, str]:
    """What a dataset adapter needs from the shipped detector: a file's 6 s offsets (default threshold and track
    rule), their provenance (:func:`offsets_source`) and, when there are none, why not (else "")."""
    found = track_vocals(path)
    return found.offsets, offsets_source(), found.why_empty()


# --- ground truth, training and evaluation ----------------------------------------------------------------


def stem_activity(stem: np.ndarray, sr: int, seconds: float = 3.0) -> np.ndarray:
    """Exact ground truth from a vocal stem: a segment is vocal when >= 25 % of its 10 ms frames are within
    35 dB of the stem's loudest frame."""
    stem = np.asarray(stem, dtype=np.float64)
    frame = int(sr * 0.01)
    n = stem.size // frame
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    e = 10 * np.log10((stem[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    voiced = e >= e.max() - GT_FRAME_DB
    per = int(round(seconds / 0.01))
    n_seg = int(stem.size // int(round(seconds * sr)))
    return np.array([voiced[k * per : (k + 1) * per].mean() >= GT_MIN_SHARE for k in range(n_seg)], dtype=np.int8)


def _pairs(manifest, inputs: Sequence[str]) -> Iterable[tuple[str, Path, Path]]:
    for t in manifest.tracks:
        if t.vocals is None:
            continue
        for kind in inputs:
            yield kind, (t.audio if kind == "mixture" else t.vocals), t.vocals


def file_features(path: Path | str, seconds: float = 3.0, cache: Path | None = None) -> np.ndarray:
    """:func:`segment_features` of an audio file; with ``cache`` (a folder), kept there under the file's content
    digest (singerbench.audio.file_digest, memoised per process), :data:`FEATURE_VERSION` and the segment
    length, so a refit re-reads no unchanged corpus."""
    if cache is None:
        return segment_features(*read_mono(path), seconds)
    from singerbench.audio import file_digest
    from singerbench.io import atomic_write

    hit = Path(cache) / f"{file_digest(Path(path))}-v{FEATURE_VERSION}-{seconds:g}s.npy"
    if hit.exists():
        return np.load(hit)
    feats = segment_features(*read_mono(path), seconds)
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, feats)

    atomic_write(hit, save)
    return feats


def labelled_segments(manifest, inputs: Sequence[str] = ("mixture", "vocals"), seconds: float = 3.0,
                      cache: Path | None = None):
    """(features, labels, kinds) of every 3 s segment of every track with a vocal stem."""
    feats, labels, kinds = [], [], []
    for kind, audio, stem in _pairs(manifest, inputs):
        gt = stem_activity(*read_mono(stem), seconds)
        f = file_features(audio, seconds, cache)
        n = min(len(f), len(gt))
        feats.append(f[:n])
        labels.append(gt[:n])
        kinds += [kind] * n
    if not feats:
        raise UserError(f"dataset {manifest.name!r} has no track with a vocal stem; VAD needs ground truth")
    return np.concatenate(feats), np.concatenate(labels), np.asarray(kinds)


def _scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    tp = int(((pred == 1) & (gt == 1)).sum())
    fp = int(((pred == 1) & (gt == 0)).sum())
    fn = int(((pred == 0) & (gt == 1)).sum())
    return {
        "segments": int(gt.size),
        "vocal": int(gt.sum()),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": float((pred == gt).mean()) if gt.size else 0.0,
    }


def evaluate_vad(
    manifest,
    threshold: float = DEFAULT_THRESHOLD,
    inputs: Sequence[str] = ("mixture", "vocals"),
    seconds: float = 3.0,
    weights: Path = WEIGHTS_PATH,
    cache: Path | None = None,
) -> dict:
    """Precision and recall of the VAD against the vocal stems' exact activity, per input kind and overall."""
    feats, gt, kinds = labelled_segments(manifest, inputs, seconds, cache)
    pred = (_predict(feats, _weights(Path(weights))) >= threshold).astype(np.int8)
    out = {kind: _scores(pred[kinds == kind], gt[kinds == kind]) for kind in inputs}
    out["all"] = _scores(pred, gt)
    out["threshold"] = threshold
    return out


def fit_mlp(z: np.ndarray, y: np.ndarray, hidden: int = 16, l2: float = 1e-3, steps: int = 3000,
            lr: float = 0.01, seed: int = 0, vocal_weight: float = 0.5) -> dict:
    """Cross-entropy MLP on standardised ``z`` (``hidden`` tanh units, logistic output), full-batch Adam, the
    vocal segments weighing ``vocal_weight`` of the loss in all (0.5: balanced); returns the member's weights."""
    rng = np.random.default_rng(seed)
    pos, neg = max(int(y.sum()), 1), max(int(len(y) - y.sum()), 1)
    sw = np.where(y == 1, vocal_weight / pos, (1 - vocal_weight) / neg)
    params = [rng.normal(0, 1 / np.sqrt(z.shape[1]), (z.shape[1], hidden)), np.zeros(hidden),
              rng.normal(0, 1 / np.sqrt(hidden), hidden), np.zeros(1)]
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    for t in range(1, steps + 1):
        w1, b1, w2, b2 = params
        h = np.tanh(z @ w1 + b1)
        p = 1.0 / (1.0 + np.exp(-np.clip(h @ w2 + b2[0], -50, 50)))
        g = sw * (p - y)
        gh = np.outer(g, w2) * (1 - h**2)
        grads = [z.T @ gh + l2 * w1, gh.sum(axis=0), h.T @ g + l2 * w2, np.array([g.sum()])]
        for i, gr in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr**2
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
    w1, b1, w2, b2 = params
    return {"hidden": w1.tolist(), "hidden_bias": b1.tolist(), "coef": w2.tolist(), "intercept": float(b2[0])}


def fit_ensemble(x: np.ndarray, y: np.ndarray, members: int = 5, seed: int = 0,
                 log: Callable[[str], None] | None = None, **mlp) -> dict:
    """Standardise ``x``, then fit ``members`` MLPs from different random starts (seeds ``seed``,
    ``seed + 1``, ...); their mean probability varies less with the start than one MLP's does. ``log`` hears
    of each member fitted (a fit takes minutes on a busy machine)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    fitted = []
    for k in range(members):
        fitted.append(fit_mlp(z, y, seed=seed + k, **mlp))
        if log is not None:
            log(f"vad fit: MLP {k + 1} of {members} fitted")
    return {"mean": mean.tolist(), "scale": scale.tolist(), "members": fitted}


#: the statistics the shipped MLPs read: the base statistics but the absolute level (kept only for the silence
#: gate), so that how loud a file was mastered never decides whether someone sings in it. The statistics
#: relative to the track (columns N_BASE and up) are computed but not read: with them the real instrumental
#: Vibe Ace was flagged on most of its segments.
FIT_FEATURES = tuple(i for i in range(N_BASE) if i != 24)
FIT = {"members": 5, "hidden": 16, "l2": 1e-3, "steps": 3000, "lr": 0.01, "seed": 0, "vocal_weight": 0.5}


def fit_data(labelled: Sequence, negatives: Sequence[Path], cache: Path | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of every segment of the labelled manifests (mixtures and stems) and of the voiceless
    files (every segment 0)."""
    parts = [labelled_segments(m, cache=cache) for m in labelled]
    xs = [p[0] for p in parts] + [file_features(f, cache=cache) for f in negatives]
    ys = [p[1] for p in parts] + [np.zeros(len(x), dtype=np.int8) for x in xs[len(parts):]]
    return np.concatenate(xs), np.concatenate(ys).astype(np.float64)


def train_vad(labelled: Sequence, negatives: Sequence[Path], out: Path = WEIGHTS_PATH, note: str = "",
              cache: Path | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Fit the detector on manifests with vocal stems (ground truth; mixtures and stems) plus voiceless files
    (every segment 0), with the settings :data:`FIT`, and save it as the weights document."""
    from singerbench.io import atomic_write_text

    x, y = fit_data(labelled, negatives, cache)
    settings = dict(FIT)
    doc = fit_ensemble(x[:, FIT_FEATURES], y, log=log, **settings)
    doc.update(features=list(FIT_FEATURES), feature_version=FEATURE_VERSION, threshold=DEFAULT_THRESHOLD,
               fit=settings, trained_on=note, segments=int(len(y)), vocal=int(y.sum()))
    atomic_write_text(Path(out), json.dumps(doc, indent=1) + "\n")
    _weights.cache_clear()
    return doc


def recordings_corpus(audio_dir: Path, out_dir: Path, seed: int = 0, n_tracks: int = 12) -> list:
    """A labelled corpus from real recordings: speech placed at random times over an instrumental or silence.

    Used to bootstrap the weights when no generated singers are at hand: ``audio_dir`` holds the shared
    LibriSpeech readings and the instrumental ``kevin_macleod-vibe_ace.ogg`` (see ../shared/data/README.md).
    Returns Tracks with ``audio`` (mixture) and ``vocals`` (the placed voice, exact ground truth).
    """
    from singerbench.manifest import Track

    rng = np.random.default_rng(seed)
    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    voices = [read_mono(p)[0] for p in sorted(audio_dir.glob("librispeech-*.ogg"))]
    music = read_mono(audio_dir / "kevin_macleod-vibe_ace.ogg")[0]
    if not voices:
        raise UserError(f"{audio_dir} holds no librispeech-*.ogg readings")
    out_dir.mkdir(parents=True, exist_ok=True)
    tracks = []
    length = 30 * SR
    for i in range(n_tracks):
        voice = np.zeros(length, dtype=np.float32)
        t = int(rng.integers(0, 3 * SR))
        while t < length:
            v = voices[int(rng.integers(len(voices)))]
            start = int(rng.integers(0, max(1, v.size - 8 * SR)))
            piece = v[start : start + int(rng.integers(3, 9) * SR)]
            piece = piece[: length - t]
            voice[t : t + piece.size] += piece / (np.abs(piece).max() + 1e-9)
            t += piece.size + int(rng.integers(2, 9) * SR)
        kind = i % 3
        if kind == 2:  # stem-like: the voice over faint noise
            bed = (rng.standard_normal(length) * 1e-3).astype(np.float32)
        else:
            start = int(rng.integers(0, music.size - length))
            bed = music[start : start + length]
            bed = bed / (np.abs(bed).max() + 1e-9)
        snr_db = float(rng.uniform(-3, 9))
        gain = 10 ** (snr_db / 20) * (np.sqrt((bed**2).mean()) + 1e-9) / (np.sqrt((voice**2).mean()) + 1e-9)
        mix = bed + gain * voice if kind != 2 else bed + 0.5 * voice
        mix = mix / (np.abs(mix).max() + 1e-9) * 0.9
        mp, vp = out_dir / f"rec{i:02d}_mix.wav", out_dir / f"rec{i:02d}_voice.wav"
        sf.write(mp, mix, SR)
        sf.write(vp, voice * 0.5, SR)
        tracks.append(Track(id=f"rec{i:02d}", audio=mp, singers=("reader",), role="train", vocals=vp))
    return tracks


def track_level(scored: dict, voiceless: dict[str, Path], song: Path | None = None,
                threshold: float = DEFAULT_THRESHOLD, min_share: float = MIN_VOCAL_SHARE,
                weights: Path = WEIGHTS_PATH, cache: Path | None = None,
                log: Callable[[str], None] = print) -> dict:
    """The track rule on the scored sets: per set and input kind, how many sung tracks it keeps (track-level
    recall) and the lowest share flagged; per voiceless file, its share flagged and whether the rule would
    take it as sung (a track-level false positive); the real song's share. Also how many sung tracks are vocal
    in fewer than ``min_share`` of their segments by their stems' exact activity (the rule drops those by
    design)."""
    w = doc_weights(Path(weights))

    def flags(path: Path) -> np.ndarray:
        return (_predict(file_features(path, cache=cache), w) >= threshold).astype(np.int8)

    out: dict = {"threshold": threshold, "min_share": min_share, "sets": {}, "voiceless": {}}
    for name, manifest in scored.items():
        tracks = [t for t in manifest.tracks if t.vocals is not None]
        gt_low = sum(vocal_share(stem_activity(*read_mono(t.vocals))) < min_share for t in tracks)
        out["sets"][name] = {"tracks": len(tracks), "under the share by ground truth": int(gt_low)}
        for kind in ("mixture", "vocals"):
            shares = {t.id: (vocal_share(f := flags(t.audio if kind == "mixture" else t.vocals)),
                             track_is_vocal(f, min_share)) for t in tracks}
            rejected = sorted(k for k, (_, ok) in shares.items() if not ok)
            low = min(sh for sh, _ in shares.values())
            out["sets"][name][kind] = {"kept": len(tracks) - len(rejected), "lowest share": low,
                                       "rejected": {k: shares[k][0] for k in rejected}}
            log(f"{name:18s} {kind:8s} kept {len(tracks) - len(rejected)} of {len(tracks)} tracks "
                f"(lowest share flagged {low:.2f}; {gt_low} under {min_share:.0%} by ground truth)"
                + (f"; rejected: {', '.join(f'{k} {shares[k][0]:.2f}' for k in rejected)}" if rejected else ""))
    for name, path in voiceless.items():
        f = flags(path)
        out["voiceless"][name] = {"share": vocal_share(f), "segments": int(f.size),
                                  "taken as sung": track_is_vocal(f, min_share)}
        log(f"voiceless {name:36s} {int(f.sum())} of {f.size} segments flagged, "
            f"{'TAKEN AS SUNG' if track_is_vocal(f, min_share) else 'not sung'}")
    if song is not None and song.exists():
        f = flags(song)
        out["song"] = {"share": vocal_share(f), "segments": int(f.size), "kept": track_is_vocal(f, min_share)}
        log(f"real song with a lead vocal ({song.name}): {int(f.sum())} of {f.size} segments flagged "
            f"({vocal_share(f):.2f}), {'kept' if track_is_vocal(f, min_share) else 'REJECTED'}")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m singerbench.vad --recordings ../shared/data/audio``: refit the shipped weights, then score them.

    Fit (``vadcorpus.build_corpora``): the tiny generated singers of seed 2 (mixtures and stems), the same
    voices over random-family backings (seeds 1 and 2) and those backings alone, real readings over a real
    instrumental (seed 0), and voiceless noise and silence (seed 1). Scored on what the fit never saw: the tiny
    generated singers of seed 0, readings of seed 7, the seed-0 voices over the held-out backing families
    (organ swing, harp and strings), and the voiceless files of seed 0 (noise, silence, every family's backing
    alone, a real instrumental). With ``--cache-dir``, corpora and features are kept under DIR/vad.
    ``--track-rule`` fits nothing: it prints the track rule's figures (:func:`track_level`) for the weights.
    """
    import argparse
    import tempfile

    from singerbench import vadcorpus
    from singerbench.io import atomic_write_text

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--recordings", type=Path, required=True, help="../shared/data/audio")
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--track-rule", action="store_true",
                        help="no refit: the shipped weights' track rule (MIN_VOCAL_SHARE) on the scored sets")
    parser.add_argument("--min-share", type=float, default=MIN_VOCAL_SHARE, help="with --track-rule")
    args = parser.parse_args(argv)

    start = time.monotonic()
    if args.track_rule:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.cache_dir / "vad" if args.cache_dir is not None else Path(tmp)
            scored, voiceless = vadcorpus.scored_corpora(args.recordings, work, args.cache_dir)
            track_level(scored, voiceless, Path(args.recordings) / "karissa_hobbs-lets_go_fishin.ogg",
                        min_share=args.min_share, weights=args.out, cache=work / "features")
        print(f"track rule scored in {time.monotonic() - start:.0f} s")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.cache_dir / "vad" if args.cache_dir is not None else Path(tmp)
        features = work / "features"
        corpora = vadcorpus.build_corpora(args.recordings, work, args.cache_dir)
        doc = train_vad(corpora.fit_labelled, corpora.fit_voiceless, out=args.out, cache=features, log=print, note=(
            f"synth tiny seed {vadcorpus.FIT_SYNTH_SEED} (mixtures, stems, and its voices over random-family "
            f"backings of seeds {vadcorpus.RANDOM_SEEDS} and held-tone-family backings of seeds "
            f"{vadcorpus.SUSTAINED_SEEDS}, those backings alone) + recordings_corpus(seed=0) "
            "(LibriSpeech over Vibe Ace) + noise/silence of seed 1; python -m singerbench.vad"))
        print(f"fit on {doc['segments']} segments of 3 s ({doc['vocal']} vocal), "
              f"{time.monotonic() - start:.0f} s")
        doc["scores"] = {}
        for name, manifest in corpora.scored.items():
            scores = evaluate_vad(manifest, weights=args.out, cache=features)
            doc["scores"][name] = {k: scores[k] for k in ("mixture", "vocals")}
            for kind in ("mixture", "vocals"):
                s = scores[kind]
                print(f"{name:18s} {kind:8s} precision {s['precision']:.3f} recall {s['recall']:.3f} "
                      f"({s['segments']} segments of 3 s, {s['vocal']} vocal)")
        rates = vadcorpus.negative_rate(corpora.voiceless, weights=args.out, cache=features)
        doc["scores"]["voiceless, share of 3 s segments flagged"] = rates
        for name, rate in rates.items():
            n = len(file_features(corpora.voiceless[name], cache=features))
            print(f"voiceless {name:36s} flagged {rate:.2f} of {n} segments")
        song = Path(args.recordings) / "karissa_hobbs-lets_go_fishin.ogg"
        if song.exists():  # no stem, so no precision or recall: how much of a real sung song is heard as vocal
            flagged = float(np.mean(_predict(file_features(song, cache=features), doc_weights(args.out))
                                    >= DEFAULT_THRESHOLD))
            doc["scores"]["real song with a lead vocal (no stem), share of 3 s segments flagged"] = flagged
            print(f"real song with a lead vocal (Let's Go Fishin', no stem): {flagged:.2f} of its segments "
                  "flagged")
        atomic_write_text(Path(args.out), json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
