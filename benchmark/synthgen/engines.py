"""Voice engines behind one interface: a score (notes) in, a sung vocal line out.

``ENGINES`` maps an engine name (the ``engine`` column of the voices table) to an object with
``packages`` (the Debian packages the engine itself needs), ``installed(voice)`` (a cheap file check) and
``sing(voice, notes, sample_rate)`` (mono float64; the first note starts at sample 0). Festival and MBROLA
sing natively (Festival's singing mode; MBROLA's ``.pho`` pitch points); the speech-only engines (RHVoice,
Pico, Flite) speak each syllable and are made to sing through the WORLD vocoder (``singerbench.synthgen.world``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr

from singerbench.errors import UserError
from singerbench.io import atomic_write
from singerbench.synthgen.voices import Note, Voice, midi_to_hz, syllables
from singerbench.synthgen.world import SpokenSyllable, analyse, retune, sing_syllables, vibrato

#: concurrent speech-engine calls while a voice bank is filled
SPEAK_THREADS = 6


class Engine(Protocol):
    packages: tuple[str, ...]
    programs: dict[str, str]  # Debian package -> the program it installs (checked with shutil.which)

    def installed(self, voice: Voice) -> bool: ...

    def sing(self, voice: Voice, notes: list[Note], sample_rate: int, bank: Path | None = None) -> np.ndarray: ...

    def prepare(self, voice: Voice, sample_rate: int, bank: Path) -> None: ...


class _NativeSinger:
    """An engine that sings from the score itself: no voice bank to fill or read."""

    def prepare(self, voice: Voice, sample_rate: int, bank: Path) -> None:
        return None


def _run(cmd: list[str], voice: Voice, what: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=stdin is not None, input=stdin)
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        raise UserError(
            f"{what} failed for voice {voice.id}: {err.strip()[-300:]} "
            f"(is it installed? run: sudo apt-get install -y {voice.package})"
        )
    return proc


def _read_mono(path: Path, sample_rate: int) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if sr != sample_rate:
        x = soxr.resample(x, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(x)


# --- Festival: singing mode -------------------------------------------------------------------------------


FESTIVAL_ROOTS = (Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices"),
                  Path("/usr/local/share/festival/voices"))


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


class Festival(_NativeSinger):
    packages = ("festival",)
    programs = {"festival": "text2wave"}

    def installed(self, voice: Voice) -> bool:  # festival itself is checked with the backing tools (system.py)
        return any(root.is_dir() and any(root.glob(f"*/{voice.name}")) for root in FESTIVAL_ROOTS)

    def sing(self, voice: Voice, notes: list[Note], sample_rate: int, bank: Path | None = None) -> np.ndarray:
        if not notes:
            raise ValueError("nothing to sing")
        with tempfile.TemporaryDirectory(prefix="singerbench-sing-") as tmp:
            xml, wav = Path(tmp) / "song.xml", Path(tmp) / "song.wav"
            xml.write_text(song_xml(notes))
            _run(["text2wave", "-mode", "singing", "-eval", f"(voice_{voice.name})", str(xml), "-o", str(wav)],
                 voice, "Festival singing")
            if not wav.is_file():
                raise UserError(f"Festival wrote no audio for voice {voice.id}")
            return retune(_read_mono(wav, sample_rate), sample_rate, notes)


# --- MBROLA: native singing through .pho pitch points -------------------------------------------------------

MBROLA_ROOT = Path("/usr/share/mbrola")
ONSET_SHARE = 0.35  # at most this share of a note goes to the consonants before its vowel
MIN_VOWEL_MS = 40


@lru_cache(maxsize=8192)
def mbrola_phonemes(voice_name: str, text: str) -> tuple[tuple[str, int], ...]:
    """espeak-ng's phonemes and durations (ms) for ``text`` in the voice's phoneme set, pauses dropped."""
    proc = subprocess.run(["espeak-ng", "-q", "-v", f"mb-{voice_name}", "--pho", text], capture_output=True,
                          text=True)
    out: list[tuple[str, int]] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(";") and parts[0] != "_":
            out.append((parts[0], int(float(parts[1]))))
    if proc.returncode != 0 or not out:
        raise UserError(f"espeak-ng gave no phonemes for {text!r} with mb-{voice_name} "
                        f"(run: sudo apt-get install -y espeak-ng mbrola-{voice_name})")
    return tuple(out)


def _pitch_points(hz: float, dur_ms: float, t0_ms: float, n: int) -> str:
    """``n + 1`` evenly spaced pitch points (percent, Hz) with vibrato, phase continuous across the line."""
    pts = []
    for k in range(n + 1):
        t = (t0_ms + dur_ms * k / n) / 1000.0
        f = hz * vibrato(t)
        pts.append(f"{100 * k // n} {f:.1f}")
    return " ".join(pts)


def pho_text(voice_name: str, notes: list[Note]) -> str:
    """The ``.pho`` score: per note, its consonants at speech length (capped), the vowel held to the end."""
    lines = ["_ 20"]
    t_ms = 20.0
    t0 = notes[0].start
    for i, note in enumerate(notes):
        phones = mbrola_phonemes(voice_name, note.text)
        nucleus = max(range(len(phones)), key=lambda j: phones[j][1])
        note_ms = note.dur * 1000.0
        onset = phones[:nucleus]
        coda = phones[nucleus + 1 :]
        onset_total = sum(d for _, d in onset) or 1
        onset_scale = min(1.0, ONSET_SHARE * note_ms / onset_total)
        coda_total = sum(d for _, d in coda) or 1
        coda_scale = min(1.0, 0.15 * note_ms / coda_total)
        parts = [(p, max(10.0, d * onset_scale)) for p, d in onset]
        tail = [(p, max(10.0, d * coda_scale)) for p, d in coda]
        vowel = max(MIN_VOWEL_MS, note_ms - sum(d for _, d in parts) - sum(d for _, d in tail))
        hz = midi_to_hz(note.pitch)
        for p, d in [*parts, (phones[nucleus][0], vowel), *tail]:
            lines.append(f"{p} {d:.0f} {_pitch_points(hz, d, t_ms, max(1, int(d // 40)))}")
            t_ms += round(d)
        if i + 1 < len(notes):
            gap_ms = (notes[i + 1].start - t0) * 1000.0 + 20.0 - t_ms
            if gap_ms >= 1:
                lines.append(f"_ {gap_ms:.0f}")
                t_ms += round(gap_ms)
    lines.append("_ 50")
    return "\n".join(lines) + "\n"


class Mbrola(_NativeSinger):
    packages = ("mbrola", "espeak-ng")
    programs = {"mbrola": "mbrola", "espeak-ng": "espeak-ng"}

    def installed(self, voice: Voice) -> bool:
        return (shutil.which("mbrola") is not None and shutil.which("espeak-ng") is not None
                and (MBROLA_ROOT / voice.name / voice.name).is_file())

    def sing(self, voice: Voice, notes: list[Note], sample_rate: int, bank: Path | None = None) -> np.ndarray:
        if not notes:
            raise ValueError("nothing to sing")
        with tempfile.TemporaryDirectory(prefix="singerbench-mbrola-") as tmp:
            pho, wav = Path(tmp) / "song.pho", Path(tmp) / "song.wav"
            pho.write_text(pho_text(voice.name, notes))
            _run(["mbrola", "-e", str(MBROLA_ROOT / voice.name / voice.name), str(pho), str(wav)], voice, "MBROLA")
            x = _read_mono(wav, sample_rate)
        return x[int(round(0.02 * sample_rate)) :]  # the leading 20 ms pause


# --- speech engines sung through WORLD -----------------------------------------------------------------------


class _Speaker:
    """A speech-only engine: speaks one syllable to a wav file; WORLD makes the syllables sing.

    Spoken syllables are analysed once per voice and kept in a voice bank on disk (``prepare``), which
    every render process reads, so no syllable is spoken twice in a corpus.
    """

    packages: tuple[str, ...] = ()
    program = ""

    @property
    def programs(self) -> dict[str, str]:
        return {self.packages[0]: self.program}

    def command(self, voice: Voice, text: str, wav: Path) -> tuple[list[str], str | None]:
        raise NotImplementedError

    def installed(self, voice: Voice) -> bool:
        return shutil.which(self.program) is not None

    def speak(self, voice: Voice, text: str, sample_rate: int) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix=f"singerbench-{self.program}-") as tmp:
            wav = Path(tmp) / "say.wav"
            cmd, stdin = self.command(voice, text, wav)
            _run(cmd, voice, self.program, stdin=stdin)
            return _read_mono(wav, sample_rate)

    def prepare(self, voice: Voice, sample_rate: int, bank: Path) -> None:
        """Speak and analyse every syllable of the voice's language into ``bank/<voice>-<sr>.npz``."""
        path = _bank_file(bank, voice, sample_rate)
        if path.is_file():
            return
        arrays: dict[str, np.ndarray] = {}
        words = syllables(voice.language)
        # the engines' start-up dominates one syllable's synthesis and mostly waits: speak several at once
        with ThreadPoolExecutor(max_workers=SPEAK_THREADS) as pool:
            waves = list(pool.map(lambda text: self.speak(voice, text, sample_rate), words))
        for i, x in enumerate(waves):
            syl = analyse(x, sample_rate)
            arrays.update({f"{i}_sp": syl.sp, f"{i}_ap": syl.ap, f"{i}_voiced": syl.voiced,
                           f"{i}_onset": np.array(syl.onset)})
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(path, write)

    def sing(self, voice: Voice, notes: list[Note], sample_rate: int, bank: Path | None = None) -> np.ndarray:
        banked = _load_bank(bank, voice, sample_rate) if bank is not None else {}
        spoken = {t: banked.get(t) or _spoken(self, voice, t, sample_rate) for t in dict.fromkeys(n.text for n in notes)}
        return sing_syllables(notes, spoken, sample_rate)


def _bank_file(bank: Path, voice: Voice, sample_rate: int) -> Path:
    return Path(bank) / f"{voice.id}-{sample_rate}.npz"


@lru_cache(maxsize=256)
def _load_bank(bank: Path, voice: Voice, sample_rate: int) -> dict[str, SpokenSyllable]:
    path = _bank_file(bank, voice, sample_rate)
    if not path.is_file():
        return {}
    with np.load(path) as z:
        return {
            text: SpokenSyllable(sp=z[f"{i}_sp"], ap=z[f"{i}_ap"], voiced=z[f"{i}_voiced"], onset=int(z[f"{i}_onset"]))
            for i, text in enumerate(syllables(voice.language)) if f"{i}_sp" in z
        }


@lru_cache(maxsize=8192)
def _spoken(engine: _Speaker, voice: Voice, text: str, sample_rate: int) -> SpokenSyllable:
    return analyse(engine.speak(voice, text, sample_rate), sample_rate)


class RHVoice(_Speaker):
    packages = ("rhvoice",)
    program = "RHVoice-test"
    roots = (Path("/usr/share/RHVoice/voices"), Path("/usr/local/share/RHVoice/voices"))

    def installed(self, voice: Voice) -> bool:
        return super().installed(voice) and any((r / voice.name).is_dir() for r in self.roots)

    def command(self, voice: Voice, text: str, wav: Path) -> tuple[list[str], str | None]:
        return ["RHVoice-test", "-p", voice.name, "-o", str(wav)], text


class Pico(_Speaker):
    packages = ("libttspico-utils",)
    program = "pico2wave"

    def installed(self, voice: Voice) -> bool:
        return super().installed(voice) and any(Path("/usr/share/pico/lang").glob(f"{voice.name}_*"))

    def command(self, voice: Voice, text: str, wav: Path) -> tuple[list[str], str | None]:
        return ["pico2wave", "-l", voice.name, "-w", str(wav), text], None


class Flite(_Speaker):
    packages = ("flite",)
    program = "flite"

    def command(self, voice: Voice, text: str, wav: Path) -> tuple[list[str], str | None]:
        return ["flite", "-voice", voice.name, "-t", text, "-o", str(wav)], None


ENGINES: dict[str, Engine] = {
    "festival": Festival(),
    "mbrola": Mbrola(),
    "rhvoice": RHVoice(),
    "pico": Pico(),
    "flite": Flite(),
}


def sing(voice: Voice, notes: list[Note], sample_rate: int, bank: Path | None = None) -> np.ndarray:
    """Render ``notes`` with ``voice`` through its engine; mono float64 at ``sample_rate``, first note at 0.

    ``bank``: a folder of voice banks made by ``prepare`` (speech engines read their syllables from it).
    """
    return ENGINES[voice.engine].sing(voice, notes, sample_rate, bank)


def prepare(voice: Voice, sample_rate: int, bank: Path) -> None:
    """Fill the voice bank of ``voice`` (speech engines; nothing to do for natively singing ones)."""
    ENGINES[voice.engine].prepare(voice, sample_rate, bank)
