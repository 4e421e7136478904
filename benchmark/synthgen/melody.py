"""Song form and seeded random melodies: what the generated singers sing.

A song has a tempo, a bar grid and one chord per bar (from the home style's progressions). The voice sings
two-bar phrases after a one-bar intro, each ending in a short breath; pitches walk the scale of the style's
key within the singer's range and land on chord tones at bar starts, so the line fits the backing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from singerbench.synthgen.styles import HomeStyle
from singerbench.synthgen.voices import Note

PHRASE_BARS = 2
INTRO_BARS = 1


@dataclass(frozen=True)
class SongForm:
    """The time grid shared by the voice and the backing."""

    style: HomeStyle
    bpm: float
    n_bars: int  # bars rendered (the audio is cut to the track length)
    chords: tuple[int, ...]  # scale degree of each bar's chord

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar_s(self) -> float:
        return self.style.beats_per_bar * self.beat_s

    def phrase_starts(self, seconds: float) -> list[int]:
        """Bars at which a phrase starts: after the intro, every phrase wholly inside the track."""
        full_bars = int(math.floor(seconds / self.bar_s + 1e-9))
        return list(range(INTRO_BARS, full_bars - PHRASE_BARS + 1, PHRASE_BARS))

    def chord_pitch_classes(self, bar: int) -> tuple[int, ...]:
        """Pitch classes of the triad on bar ``bar``."""
        scale = self.style.mode
        deg = self.chords[bar % len(self.chords)]
        return tuple((self.style.tonic + scale[(deg + k) % 7]) % 12 for k in (0, 2, 4))


def song_form(style: HomeStyle, seconds: float, rng: np.random.Generator) -> SongForm:
    """Draw a tempo within the style's range and a progression; enough bars to cover ``seconds``."""
    bpm = float(rng.integers(style.tempo[0], style.tempo[1] + 1))
    prog = style.progressions[int(rng.integers(len(style.progressions)))]
    bar_s = style.beats_per_bar * 60.0 / bpm
    n_bars = int(math.ceil(seconds / bar_s)) + 1
    chords = tuple(prog[i % len(prog)] for i in range(n_bars))
    return SongForm(style, bpm, n_bars, chords)


def _scale_pitches(style: HomeStyle, low: int, high: int) -> np.ndarray:
    return np.array([p for p in range(low, high + 1) if (p - style.tonic) % 12 in style.mode])


def phrase(
    form: SongForm,
    start_bar: int,
    low: int,
    high: int,
    syllables: tuple[str, ...],
    rng: np.random.Generator,
) -> list[Note]:
    """One two-bar phrase starting at ``start_bar``, within MIDI range [low, high]; times from song start."""
    beats = form.style.beats_per_bar * PHRASE_BARS
    breath = float(rng.choice([0.5, 1.0, 1.0, 1.5]))
    durs: list[float] = []
    left = beats - breath
    while left > 1e-9:
        d = float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
        d = min(d, left)
        durs.append(d)
        left -= d
    pitches = _scale_pitches(form.style, low, high)
    idx = int(rng.integers(len(pitches) // 4, max(len(pitches) // 4 + 1, 3 * len(pitches) // 4)))
    notes: list[Note] = []
    t_beats = 0.0
    for i, d in enumerate(durs):
        bar = start_bar + int(t_beats // form.style.beats_per_bar)
        on_downbeat = abs(t_beats % form.style.beats_per_bar) < 1e-9
        step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
        idx = int(np.clip(idx + step, 0, len(pitches) - 1))
        if on_downbeat or i == len(durs) - 1:  # land on a chord tone
            chord = form.chord_pitch_classes(bar)
            tones = [j for j, p in enumerate(pitches) if p % 12 in chord]
            if tones:
                idx = min(tones, key=lambda j: (abs(j - idx), j))
        start = start_bar * form.bar_s + t_beats * form.beat_s
        text = syllables[int(rng.integers(len(syllables)))]
        notes.append(Note(start=start, dur=d * form.beat_s, pitch=float(pitches[idx]), text=text))
        t_beats += d
    return notes
