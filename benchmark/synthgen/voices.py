"""The singers: ten Festival diphone voices (real recorded speakers) made to sing through Festival's singing mode.

The voices are the only real material in the corpus; everything they sing is generated. Each voice gets a
singing range centred a little above its measured speaking pitch, so that melodies stay where the diphone
resynthesis sounds natural.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from singerbench.errors import UserError


@dataclass(frozen=True)
class Voice:
    """One singer: a Festival voice, the Debian package that holds it and the range it sings in (MIDI notes)."""

    id: str
    festival_name: str
    package: str
    language: str
    low: int  # lowest sung MIDI note
    high: int  # highest sung MIDI note


# Ranges: speaking F0 medians measured on these voices (Festival 2.5, `text2wave`) are, in Hz: kal 105,
# ked 102, lp 210, pc 121, suo_fi_lj 167, hy_fi_mv 104, dita 222, krb 258, machac 100, ph 136. Each range runs
# from 3 semitones below to 8 above that pitch (rounded to MIDI notes).
VOICES: tuple[Voice, ...] = (
    Voice("kal", "kal_diphone", "festvox-kallpc16k", "en", 41, 52),
    Voice("ked", "ked_diphone", "festvox-kdlpc16k", "en", 40, 51),
    Voice("ita_lp", "lp_diphone", "festvox-italp16k", "it", 53, 64),
    Voice("ita_pc", "pc_diphone", "festvox-itapc16k", "it", 43, 54),
    Voice("fin_lj", "suo_fi_lj_diphone", "festvox-suopuhe-lj", "fi", 49, 60),
    Voice("fin_mv", "hy_fi_mv_diphone", "festvox-suopuhe-mv", "fi", 41, 52),
    Voice("cze_dita", "czech_dita", "festvox-czech-dita", "cs", 54, 65),
    Voice("cze_krb", "czech_krb", "festvox-czech-krb", "cs", 57, 68),
    Voice("cze_machac", "czech_machac", "festvox-czech-machac", "cs", 40, 51),
    Voice("cze_ph", "czech_ph", "festvox-czech-ph", "cs", 46, 57),
)
VOICE_BY_ID = {v.id: v for v in VOICES}

# One-syllable words per language (checked: Festival's lexicon/letter-to-sound rules give each exactly one
# syllable for every voice of that language, which singing mode needs: one pitch and duration per syllable).
SYLLABLES: dict[str, tuple[str, ...]] = {
    "en": tuple("la na ma da lo no mo do go so day may way say high my oh low see me you new love home "
                "sun moon rain night light".split()),
    "it": tuple("la na ma da ta lo no mo do so re mi fa sol si tu me te le ne ve va vo ro ri ra".split()),
    "fi": tuple("la na ma ta lo no mo so si mi ni li tu lu ku ka ko ke me ne le te vo va".split()),
    "cs": tuple("la na ma da ta lo no mo do so si mi ni li tu lu ku ka ko ke me ne le te vo va ja jo".split()),
}


@dataclass(frozen=True)
class Note:
    """A sung syllable: start and length in seconds from the start of the vocal line, MIDI pitch, text."""

    start: float
    dur: float
    pitch: float
    text: str


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def song_xml(notes: list[Note]) -> str:
    """Festival SINGING markup for ``notes``; gaps between notes become rests, times are given in seconds."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>',
        '<SINGING BPM="60">',
    ]
    for i, n in enumerate(notes):
        lines.append(
            f'<PITCH FREQ="{midi_to_hz(n.pitch):.3f}"><DURATION SECONDS="{n.dur:.4f}">{n.text}</DURATION></PITCH>'
        )
        if i + 1 < len(notes):
            gap = notes[i + 1].start - (n.start + n.dur)
            if gap > 1e-4:
                lines.append(f'<REST SECONDS="{gap:.4f}"></REST>')
    lines.append("</SINGING>")
    return "\n".join(lines) + "\n"


def sing(voice: Voice, notes: list[Note], sample_rate: int) -> np.ndarray:
    """Render ``notes`` with ``voice`` through ``text2wave -mode singing``; mono float64 at ``sample_rate``.

    The first note starts at sample 0 of the result (callers place the line in time themselves).
    """
    if not notes:
        raise ValueError("nothing to sing")
    with tempfile.TemporaryDirectory(prefix="singerbench-sing-") as tmp:
        xml = Path(tmp) / "song.xml"
        wav = Path(tmp) / "song.wav"
        xml.write_text(song_xml(notes))
        proc = subprocess.run(
            ["text2wave", "-mode", "singing", "-eval", f"(voice_{voice.festival_name})", str(xml), "-o", str(wav)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not wav.is_file():
            raise UserError(
                f"Festival failed to sing with voice {voice.festival_name}: {proc.stderr.strip()[-300:]} "
                f"(is it installed? run: sudo apt-get install -y {voice.package})"
            )
        x, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if sr != sample_rate:
        x = soxr.resample(x, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(x)
