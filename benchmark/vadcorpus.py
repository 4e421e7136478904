"""Labelled corpora for fitting and scoring the vocal activity detector (``singerbench.vad``).

- :func:`held_out_mixtures`: the generated singers' true vocal stems over backings of families the detector
  is never fit on (:data:`HELD_OUT_STYLES`, rendered by fluidsynth like the synth backings), mixed as the
  synth corpus mixes (vocal-to-accompaniment ratio drawn in -2..6 dB). Ground truth: the stem.
- :func:`negatives`: audio with no voice at all: white and pink noise at -60..-20 dBFS, digital and
  near-digital silence, instrumental-only music (backings of every family, a real instrumental).

The detector must never flag a segment of a negative; :func:`negative_rate` measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from singerbench.manifest import Manifest, Track
from singerbench.synthgen.styles import CLOSED_HAT, KICK, MAJOR, MINOR, RIDE, SNARE, HomeStyle

SR = 16000

#: Backing families absent from the synth corpus's home styles: the detector is never fit on them.
HELD_OUT_STYLES: tuple[HomeStyle, ...] = (
    HomeStyle(
        "organ_swing", 17, 32, 19, (150, 176), 4, 12, 7, MAJOR, 60, 36,
        comp="x..x.xx..x.x", bass="x..x..x..x..",
        drums={RIDE: "x..x.xx..x.x", CLOSED_HAT: "...x.....x..", KICK: "x.....x....."},
        progressions=((0, 5, 1, 4), (0, 3, 4, 4)),
    ),
    HomeStyle(
        "harp_strings", 46, 43, 48, (72, 84), 3, 6, 0, MINOR, 60, 36,
        comp="x.x.x.", bass="x.....", drums={KICK: "x.....", SNARE: "...o.."},
        progressions=((0, 5, 3, 4),), arpeggio=True,
    ),
)


#: General MIDI programs random training styles draw from: every melodic program except the voice-like ones
#: (choir aahs, voice oohs, synth voice, voice lead), the held-out families' and effects/percussive ones.
_HELD_OUT_PROGRAMS = {p for st in HELD_OUT_STYLES for p in (st.chords_program, st.bass_program, st.pad_program)}
RANDOM_PROGRAMS = tuple(p for p in range(0, 104) if p not in {52, 53, 54, 85} | _HELD_OUT_PROGRAMS)
BASS_PROGRAMS = tuple(p for p in (32, 33, 34, 35, 36, 37, 38, 39, 42, 58, 70) if p not in _HELD_OUT_PROGRAMS)


def random_style(rng: np.random.Generator) -> HomeStyle:
    """A backing family drawn at random (instruments, tempo, metre, key, patterns): fit material for the
    detector, so that no one family's timbre is what it learns to call 'not vocal'."""
    beats = int(rng.choice([3, 4]))
    steps = beats * int(rng.choice([2, 3, 4]))

    def pattern(density: float) -> str:
        hits = rng.random(steps) < density
        hits[0] = True
        return "".join("x" if h else "." for h in hits)

    drums = {key: pattern(d) for key, d in ((KICK, 0.25), (SNARE, 0.2), (CLOSED_HAT, 0.6), (RIDE, 0.3))
             if rng.random() < 0.7}
    degrees = [tuple(int(d) for d in rng.integers(0, 7, 4)) for _ in range(2)]
    return HomeStyle(
        f"random{int(rng.integers(1 << 30))}", int(rng.choice(RANDOM_PROGRAMS)), int(rng.choice(BASS_PROGRAMS)),
        int(rng.choice(RANDOM_PROGRAMS)) if rng.random() < 0.7 else None,
        (lambda t: (t, t + 10))(int(rng.integers(60, 170))), beats, steps, int(rng.integers(12)),
        MAJOR if rng.random() < 0.5 else MINOR, int(rng.choice([48, 60, 72])), int(rng.choice([28, 36])),
        comp=pattern(0.4), bass=pattern(0.3), drums=drums, progressions=tuple(degrees),
        arpeggio=bool(rng.random() < 0.3),
    )


def random_backing_mixtures(corpus: Manifest, out_dir: Path, seed: int = 0) -> tuple[list[Track], list[Path]]:
    """The corpus's vocal stems over random-family backings (labelled Tracks), and those backings alone."""
    from singerbench.synthgen.mix import mix

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tracks, backings = [], []
    for i, t in enumerate(t for t in corpus.tracks if t.vocals is not None):
        vocals, sr = sf.read(str(t.vocals), dtype="float64")
        style = random_style(rng)
        backing = render_style(style, len(vocals) / sr, seed * 100003 + i, sr)
        vq, aq, mq = mix(vocals, backing, float(rng.uniform(-2.0, 6.0)), sr)
        mp, vp, bp = (out_dir / f"{t.id}-{i}.{kind}.flac" for kind in ("mix", "vocals", "backing"))
        for path, x in ((mp, mq), (vp, vq), (bp, aq)):
            sf.write(path, x, sr, subtype="PCM_16")
        tracks.append(Track(f"{t.id}-random{i}", mp, t.singers, "train", vocals=vp, genre=style.name))
        backings.append(bp)
    return tracks, backings


def render_style(style: HomeStyle, seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """One backing of ``style``, mono float at ``sr``, exactly ``seconds`` long."""
    from singerbench.synthgen.backing import render_backing
    from singerbench.synthgen.melody import song_form

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    return render_backing(song_form(style, seconds, rng), rng, sr, n)


def held_out_mixtures(corpus: Manifest, out_dir: Path, seed: int = 0, styles: Sequence[HomeStyle] = HELD_OUT_STYLES,
                      limit: int | None = None) -> list[Track]:
    """The corpus's vocal stems over held-out backings: Tracks with ``audio`` (mixture) and ``vocals`` (stem)."""
    from singerbench.synthgen.mix import mix

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tracks = []
    with_stems = [t for t in corpus.tracks if t.vocals is not None][:limit]
    for i, t in enumerate(with_stems):
        vocals, sr = sf.read(str(t.vocals), dtype="float64")
        if vocals.ndim == 2:
            vocals = vocals.mean(axis=1)
        style = styles[i % len(styles)]
        backing = render_style(style, len(vocals) / sr, seed * 100003 + i, sr)
        vq, _, mq = mix(vocals, backing, float(rng.uniform(-2.0, 6.0)), sr)
        mp, vp = out_dir / f"{t.id}-{style.name}.flac", out_dir / f"{t.id}-{style.name}.vocals.flac"
        sf.write(mp, mq, sr, subtype="PCM_16")
        sf.write(vp, vq, sr, subtype="PCM_16")
        tracks.append(Track(f"{t.id}-{style.name}", mp, t.singers, "train", vocals=vp, genre=style.name))
    return tracks


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    return np.fft.irfft(spec / np.sqrt(f), n)


def negatives(out_dir: Path, recordings: Path | None = None, corpus: Manifest | None = None, seed: int = 0,
              seconds: float = 18.0, held_out: bool = True) -> dict[str, Path]:
    """Voiceless audio files by name: noise, silence and instrumental-only music (never vocal).

    ``held_out=False`` leaves out the held-out backing families (for fitting)."""
    from singerbench.synthgen.styles import STYLES

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    files: dict[str, np.ndarray] = {"silence": np.zeros(n), "dither": rng.standard_normal(n) * 10 ** (-90 / 20)}
    for level in (-60, -40, -20) if seed == 0 else (-70, -50, -30, -15):
        white = rng.standard_normal(n)
        pink = _pink(n, rng)
        files[f"white{level}dB"] = white / np.sqrt(np.mean(white**2)) * 10 ** (level / 20)
        files[f"pink{level}dB"] = pink / np.sqrt(np.mean(pink**2)) * 10 ** (level / 20)
    for i, style in enumerate((*STYLES, *HELD_OUT_STYLES) if held_out else STYLES):
        x = render_style(style, seconds, seed * 1000 + i)
        files[f"backing-{style.name}"] = x / (np.abs(x).max() + 1e-12) * 0.8
    paths = {}
    for name, x in files.items():
        paths[name] = out_dir / f"{name}.flac"
        sf.write(paths[name], np.clip(x, -1, 1), SR, subtype="PCM_24")
    if recordings is not None:
        paths["vibe_ace (real instrumental)"] = Path(recordings) / "kevin_macleod-vibe_ace.ogg"
    if corpus is not None:
        for t in [t for t in corpus.tracks if t.instrumental is not None][:10]:
            paths[f"synth instrumental {t.id}"] = t.instrumental
    return paths


def negative_rate(paths: dict[str, Path], threshold: float | None = None, weights: Path | None = None
                  ) -> dict[str, float]:
    """Per file, the share of its 3 s segments the detector flags as vocal (must be 0)."""
    from singerbench import vad

    thr = vad.DEFAULT_THRESHOLD if threshold is None else threshold
    w = vad._weights(Path(weights) if weights is not None else vad.WEIGHTS_PATH)
    out = {}
    for name, path in paths.items():
        probs = vad._predict(vad.segment_features(*vad.read_mono(path)), w)
        out[name] = float((probs >= thr).mean()) if probs.size else 0.0
    return out
