"""Backings: a home style and a song form written as a Standard MIDI File, rendered with fluidsynth.

fluidsynth runs with reverb and chorus off and float output (no dither), which makes its rendering
byte-for-byte repeatable; the soundfont is the General MIDI one from Debian's fluid-soundfont-gm.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from singerbench.errors import UserError
from singerbench.synthgen.melody import SongForm

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9
CH_COMP, CH_BASS, CH_PAD = 0, 1, 2


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(bpm: float, events: list[tuple[float, int, int, int, float]], programs: dict[int, int]) -> bytes:
    """A format-0 MIDI file: ``events`` are (start beat, channel, note, velocity, length in beats)."""
    timed: list[tuple[int, int, bytes]] = []  # (tick, order, message); note-offs sort before note-ons
    timed.append((0, 0, b"\xff\x51\x03" + int(round(60e6 / bpm)).to_bytes(3, "big")))
    for ch, prog in sorted(programs.items()):
        timed.append((0, 1, bytes([0xC0 | ch, prog])))
    for beat, ch, note, vel, length in events:
        on = int(round(beat * TICKS_PER_BEAT))
        off = max(on + 1, int(round((beat + length) * TICKS_PER_BEAT)))
        timed.append((on, 3, bytes([0x90 | ch, note, max(1, min(127, vel))])))
        timed.append((off, 2, bytes([0x80 | ch, note, 0])))
    timed.sort(key=lambda e: (e[0], e[1], e[2]))
    body = bytearray()
    last = 0
    for tick, _, msg in timed:
        body += _vlq(tick - last) + msg
        last = tick
    body += _vlq(0) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _pitch(form: SongForm, degree: int) -> int:
    """Pitch (relative to C of octave 0) of a scale degree, counting up across octaves."""
    return form.style.tonic + 12 * (degree // 7) + form.style.mode[degree % 7]


def _hits(pattern: str) -> list[tuple[int, str]]:
    return [(i, c) for i, c in enumerate(pattern) if c in "xo"]


def backing_events(form: SongForm, rng: np.random.Generator) -> list[tuple[float, int, int, int, float]]:
    """Every note of the backing: comping chords, bass, pad/arpeggio and drums, bar by bar."""
    st = form.style
    step_beats = st.beats_per_bar / st.steps_per_bar
    events: list[tuple[float, int, int, int, float]] = []

    def vel(c: str, base: int) -> int:
        return int(base - (30 if c == "o" else 0) + rng.integers(-8, 9))

    def spans(pattern: str) -> list[tuple[int, str, int]]:
        hits = _hits(pattern)
        out = []
        for k, (i, c) in enumerate(hits):
            nxt = hits[k + 1][0] if k + 1 < len(hits) else st.steps_per_bar
            out.append((i, c, nxt - i))
        return out

    for bar, deg in enumerate(form.chords):
        b0 = bar * st.beats_per_bar
        triad = [st.chord_octave + _pitch(form, deg + k) for k in (0, 2, 4)]
        triad = [p - 12 if p >= st.chord_octave + 14 else p for p in triad]
        root = st.bass_octave + (_pitch(form, deg) % 12)
        fifth = st.bass_octave + (_pitch(form, deg + 4) % 12)
        for i, c, n in spans(st.comp):
            length = min(n, st.steps_per_bar // 2) * step_beats * 0.9
            for p in triad:
                events.append((b0 + i * step_beats, CH_COMP, p, vel(c, 92), length))
        for i, c, n in spans(st.bass):
            events.append((b0 + i * step_beats, CH_BASS, root if c == "x" else fifth, vel(c, 100),
                           n * step_beats * 0.9))
        if st.pad_program is not None:
            upper = [p + 12 for p in triad]
            if st.arpeggio:
                order = upper + [upper[1]]
                for i in range(st.steps_per_bar):
                    events.append((b0 + i * step_beats, CH_PAD, order[i % len(order)], vel("x", 70),
                                   step_beats * 0.9))
            else:
                for p in upper:
                    events.append((b0, CH_PAD, p, vel("x", 62), st.beats_per_bar * 0.98))
        for note, pattern in st.drums.items():
            for i, c in _hits(pattern):
                events.append((b0 + i * step_beats, DRUM_CHANNEL, note, vel(c, 104), 0.1))
    return events


def render_backing(form: SongForm, rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """The instrumental of one track: mono float64, exactly ``n_samples`` long, 10 ms fade at the cut."""
    st = form.style
    programs = {CH_COMP: st.chords_program, CH_BASS: st.bass_program}
    if st.pad_program is not None:
        programs[CH_PAD] = st.pad_program
    data = midi_bytes(form.bpm, backing_events(form, rng), programs)
    with tempfile.TemporaryDirectory(prefix="singerbench-backing-") as tmp:
        mid = Path(tmp) / "backing.mid"
        wav = Path(tmp) / "backing.wav"
        mid.write_bytes(data)
        cmd = [
            "fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sample_rate),
            "-o", "audio.file.format=float", "-o", "synth.cpu-cores=1",
            "-F", str(wav), str(SOUNDFONT), str(mid),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wav.is_file():
            raise UserError(
                f"fluidsynth failed: {proc.stderr.strip()[-300:]} "
                "(run: sudo apt-get install -y fluidsynth fluid-soundfont-gm)"
            )
        x, _ = sf.read(str(wav), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    out = np.zeros(n_samples)
    m = min(n_samples, len(x))
    out[:m] = x[:m]
    fade = min(n_samples, int(0.01 * sample_rate))
    out[n_samples - fade :] *= np.linspace(1.0, 0.0, fade)
    return out
