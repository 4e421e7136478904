"""Singing for speech-only voices: spoken syllables re-timed and re-pitched through the WORLD vocoder.

Each distinct syllable is spoken once and analysed (F0, spectral envelope, aperiodicity on a 5 ms grid). A
note then takes that syllable's frames: the consonants before the vowel at their spoken length (at most a
third of the note), the voiced nucleus stretched to fill the rest; every voiced frame gets the note's pitch
with a light vibrato, and the whole line is resynthesised at once. The spectral envelope, which carries the
speaker's identity, is the speaker's own; only timing and pitch are the score's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():  # pyworld's __init__ imports pkg_resources, which warns on import
    warnings.simplefilter("ignore")
    import pyworld

from singerbench.synthgen.voices import Note, midi_to_hz

FRAME_MS = 5.0
ONSET_SHARE = 0.33
#: the vibrato every engine sings with: depth in semitones (peak) and rate in Hz
VIBRATO_SEMITONES = 0.2
VIBRATO_HZ = 5.5
FADE_FRAMES = 4


@dataclass(frozen=True)
class SpokenSyllable:
    """WORLD parameters of one spoken syllable, trimmed: ``onset`` frames, then the voiced nucleus."""

    sp: np.ndarray  # (frames, bins) spectral envelope
    ap: np.ndarray  # (frames, bins) aperiodicity
    voiced: np.ndarray  # (frames,) bool
    onset: int  # frames before the nucleus


def analyse(x: np.ndarray, sr: int) -> SpokenSyllable:
    """Analyse one spoken syllable; the nucleus is its longest voiced run, the onset what comes before it."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=FRAME_MS, f0_floor=60.0, f0_ceil=500.0)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    voiced = f0 > 0
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(voiced):
        if voiced[i]:
            j = i
            while j < len(voiced) and voiced[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    if not runs:  # nothing voiced: hold the loudest frames
        energy = sp.sum(axis=1)
        k = int(np.argmax(energy))
        runs = [(k, k + 1)]
        voiced = np.zeros_like(voiced)
        voiced[k] = True
    a, b = max(runs, key=lambda r: r[1] - r[0])
    energy = np.log(sp.sum(axis=1) + 1e-30)
    loud = energy > energy.max() - np.log(1e4)  # within 40 dB of the loudest frame
    start = int(np.argmax(loud[:a])) if a > 0 and loud[:a].any() else a
    return SpokenSyllable(sp=sp[start:b], ap=ap[start:b], voiced=voiced[start:b], onset=a - start)


def sing_syllables(notes: list[Note], spoken: dict[str, SpokenSyllable], sr: int) -> np.ndarray:
    """Resynthesise ``notes`` (times from the first note) from their spoken syllables; mono float64."""
    t0 = notes[0].start
    end = max(n.start + n.dur for n in notes) - t0
    n_frames = int(np.ceil(end * 1000.0 / FRAME_MS)) + 2 * FADE_FRAMES
    any_syl = next(iter(spoken.values()))
    bins = any_syl.sp.shape[1]
    floor = float(np.min([s.sp.min() for s in spoken.values()]))
    sp = np.full((n_frames, bins), max(floor, 1e-16) * 1e-6)
    ap = np.ones((n_frames, bins))
    f0 = np.zeros(n_frames)
    for note in notes:
        syl = spoken[note.text]
        a = int(round((note.start - t0) * 1000.0 / FRAME_MS))
        length = max(2, int(round(note.dur * 1000.0 / FRAME_MS)))
        k = min(syl.onset, int(ONSET_SHARE * length))
        nucleus_len = len(syl.sp) - syl.onset
        idx_onset = np.arange(syl.onset - k, syl.onset)
        idx_nuc = syl.onset + np.minimum(
            np.round(np.linspace(0, nucleus_len - 1, length - k)).astype(int), nucleus_len - 1
        )
        idx = np.concatenate([idx_onset, idx_nuc])
        b = min(a + len(idx), n_frames)
        idx = idx[: b - a]
        gain = np.ones(len(idx))
        fade = min(FADE_FRAMES, len(idx) // 2)
        if fade:
            gain[-fade:] = np.linspace(1.0, 0.05, fade)
        sp[a:b] = syl.sp[idx] * gain[:, None] ** 2
        ap[a:b] = syl.ap[idx]
        t = (a + np.arange(len(idx))) * FRAME_MS / 1000.0
        hz = midi_to_hz(note.pitch) * vibrato(t)
        f0[a:b] = np.where(syl.voiced[idx], hz, 0.0)
    y = pyworld.synthesize(f0, sp, ap, sr, frame_period=FRAME_MS)
    return np.ascontiguousarray(y, dtype=np.float64)


def vibrato(t: np.ndarray | float) -> np.ndarray | float:
    """The pitch factor of the singers' vibrato at ``t`` seconds (every engine sings the same one)."""
    return 2.0 ** (VIBRATO_SEMITONES * np.sin(2 * np.pi * VIBRATO_HZ * t) / 12.0)


def score_f0(notes: list[Note], times: np.ndarray) -> np.ndarray:
    """The score's pitch (Hz, with vibrato) at ``times`` (seconds from the first note); 0 outside notes."""
    t0 = notes[0].start
    out = np.zeros(len(times))
    for note in notes:
        a, b = note.start - t0, note.start - t0 + note.dur
        inside = (times >= a) & (times < b)
        out[inside] = midi_to_hz(note.pitch)
    return out * vibrato(times)


def retune(x: np.ndarray, sr: int, notes: list[Note]) -> np.ndarray:
    """Pitch correction: every voiced frame of a sung line takes the score's pitch at its time.

    Festival's singing glides between notes for about 100 ms and sometimes drops an octave; this holds each
    note on its pitch (as the tuning plug-ins of a studio do), keeping the voice's envelope and timing.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=FRAME_MS, f0_floor=50.0, f0_ceil=800.0)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    target = score_f0(notes, t)
    held = np.where(target > 0, target, f0)  # voiced frames in a rest keep their own pitch
    new_f0 = np.where(f0 > 0, held, 0.0)
    y = pyworld.synthesize(new_f0, sp, ap, sr, frame_period=FRAME_MS)[: len(x)]
    return np.ascontiguousarray(np.pad(y, (0, len(x) - len(y))))
