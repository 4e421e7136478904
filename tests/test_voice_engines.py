"""Every voice engine sings in tune, judged by a pitch tracker that owes nothing to the generator (Praat,
through praat-parselmouth): at least 95 % of voiced frames within half a semitone of the score."""

from __future__ import annotations

import numpy as np
import pytest

from singerbench.synthgen.engines import ENGINES, sing
from singerbench.synthgen.voices import VOICE_BY_ID, VOICES, Note, Voice, midi_to_hz, syllables

parselmouth = pytest.importorskip("parselmouth")

SR = 16000
EDGE_S = 0.03  # frames this close to a note boundary are the tracker's transition, not the singer's
#: one voice per engine for the default suite (the slow test sings with every voice)
SAMPLE = ("cze_dita", "mb_de2", "rh_aleksandr", "pico_en_us", "flite_rms")


def score(voice: Voice, seed: int) -> list[Note]:
    """Ten notes in the voice's range, lengths 0.4-0.8 s, a rest after every fourth."""
    rng = np.random.default_rng(seed)
    lo, hi = voice.range
    words = syllables(voice.language)
    notes, t = [], 0.0
    for i in range(10):
        d = float(rng.choice([0.4, 0.6, 0.8]))
        notes.append(Note(t, d, float(rng.integers(lo, hi + 1)), words[int(rng.integers(len(words)))]))
        t += d + (0.2 if i % 4 == 3 else 0.0)
    return notes


def in_tune(x: np.ndarray, notes: list[Note]) -> tuple[int, int]:
    """(frames within half a semitone of their note, voiced frames inside notes) by Praat's pitch tracker."""
    pitch = parselmouth.Sound(x, SR).to_pitch(time_step=0.01, pitch_floor=60, pitch_ceiling=800)
    ok = total = 0
    for t, hz in zip(pitch.xs(), pitch.selected_array["frequency"], strict=True):
        note = next((n for n in notes if n.start + EDGE_S <= t <= n.start + n.dur - EDGE_S), None)
        if hz <= 0 or note is None:
            continue
        total += 1
        ok += abs(12 * np.log2(hz / midi_to_hz(note.pitch))) <= 0.5
    return ok, total


def _installed(voice: Voice) -> Voice:
    if not ENGINES[voice.engine].installed(voice):
        pytest.skip(f"{voice.id} is not installed here (package {voice.package}; run `make system`)")
    return voice


@pytest.mark.parametrize("voice_id", SAMPLE)
def test_engine_sings_in_tune(voice_id: str) -> None:
    voice = _installed(VOICE_BY_ID[voice_id])
    notes = score(voice, 0)
    x = sing(voice, notes, SR)
    assert abs(len(x) / SR - (notes[-1].start + notes[-1].dur)) < 0.15  # the score's timing
    ok, total = in_tune(x, notes)
    assert total > 0.6 * sum(n.dur for n in notes) / 0.01  # it sings (voiced most of the time)
    assert ok / total >= 0.95, f"{voice_id}: {ok}/{total} voiced frames within half a semitone"


@pytest.mark.slow
def test_every_voice_sings_in_tune_per_engine() -> None:
    """All voices of the table: per engine, >= 95 % of the pooled voiced frames in tune (and no voice < 80 %)."""
    pooled: dict[str, list[int]] = {}
    for voice in VOICES:
        if not ENGINES[voice.engine].installed(voice):
            continue
        notes = score(voice, 1)
        ok, total = in_tune(sing(voice, notes, SR), notes)
        assert ok / total >= 0.8, (voice.id, ok / total)
        acc = pooled.setdefault(voice.engine, [0, 0])
        acc[0] += ok
        acc[1] += total
    if not pooled:
        pytest.skip("no voice of the table is installed (make system)")
    for engine, (ok, total) in pooled.items():
        assert ok / total >= 0.95, (engine, ok / total)
