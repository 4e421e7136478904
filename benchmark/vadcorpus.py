"""Labelled corpora for fitting and scoring the vocal activity detector (``singerbench.vad``).

- :func:`held_out_mixtures`: the generated singers' true vocal stems over backings of families the detector
  is never fit on (:data:`HELD_OUT_STYLES`, rendered by fluidsynth like the synth backings), mixed as the
  synth corpus mixes (vocal-to-accompaniment ratio drawn in -2..6 dB). Ground truth: the stem.
- :func:`negatives`: audio with no voice at all: white and pink noise at -60..-20 dBFS, digital and
  near-digital silence, instrumental-only music (backings of every family, a real instrumental).

The detector must never flag a segment of a negative; :func:`negative_rate` measures it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
#: (choir aahs, voice oohs, synth voice, voice lead) and effects/percussive ones. The held-out families'
#: instruments are in (a held-out *family* is its combination of instruments, patterns, tempo and key: the
#: detector must not call an organ or a harp a voice, whatever family it plays in).
RANDOM_PROGRAMS = tuple(p for p in range(0, 104) if p not in {52, 53, 54, 85})
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39, 42, 43, 58, 70)
#: held-tone melodic programs (organs, accordion, harmonica, bowed strings and ensembles, brass, reeds, pipes,
#: synth leads and pads; not the voice-like ones) for :func:`random_style`'s ``sustained`` families
SUSTAINED_PROGRAMS = tuple(p for p in (*range(16, 24), *range(40, 46), *range(48, 52), *range(56, 96))
                           if p not in {52, 53, 54, 85})
#: bump when :func:`random_style` draws differently: backings cached under another version are stale
RANDOM_STYLE_VERSION = "2"


def random_style(rng: np.random.Generator, sustained: bool = False) -> HomeStyle:
    """A backing family drawn at random (instruments, tempo, metre, key, patterns): fit material for the
    detector, so that no one family's timbre is what it learns to call 'not vocal'. ``sustained``: chords and
    a held pad from :data:`SUSTAINED_PROGRAMS` (hard negatives: a held harmonic tone is what a voice is
    most easily confused with)."""
    beats = int(rng.choice([3, 4]))
    steps = beats * int(rng.choice([2, 3, 4]))

    def pattern(density: float) -> str:
        hits = rng.random(steps) < density
        hits[0] = True
        return "".join("x" if h else "." for h in hits)

    drums = {key: pattern(d) for key, d in ((KICK, 0.25), (SNARE, 0.2), (CLOSED_HAT, 0.6), (RIDE, 0.3))
             if rng.random() < 0.7}
    degrees = [tuple(int(d) for d in rng.integers(0, 7, 4)) for _ in range(2)]
    style = HomeStyle(
        f"random{int(rng.integers(1 << 30))}", int(rng.choice(RANDOM_PROGRAMS)), int(rng.choice(BASS_PROGRAMS)),
        int(rng.choice(RANDOM_PROGRAMS)) if rng.random() < 0.7 else None,
        (lambda t: (t, t + 10))(int(rng.integers(60, 170))), beats, steps, int(rng.integers(12)),
        MAJOR if rng.random() < 0.5 else MINOR, int(rng.choice([48, 60, 72])), int(rng.choice([28, 36])),
        comp=pattern(0.4), bass=pattern(0.3), drums=drums, progressions=tuple(degrees),
        arpeggio=bool(rng.random() < 0.3),
    )
    if not sustained:
        return style
    chords, pad = (int(p) for p in rng.choice(SUSTAINED_PROGRAMS, 2))
    return replace(style, name=f"sustained{style.name[6:]}", chords_program=chords, pad_program=pad,
                   arpeggio=False)


def _write(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """FLAC written atomically, so an interrupted render never leaves a file that reads as a cache hit."""
    from singerbench.io import atomic_write

    atomic_write(path, lambda tmp: sf.write(tmp, x, sr, format="FLAC", subtype=subtype))


def mix_stems(vocals: np.ndarray, backing: np.ndarray, var_db: float, sr: int) -> tuple[np.ndarray, ...]:
    """int16 (vocals, backing, mixture), mixture == vocals + backing, voice at ``var_db`` over the backing.

    As ``synthgen.mix.mix`` (active-voice RMS over backing RMS), but normalised so that the mixture AND each
    stem peak at <= ``PEAK``: a voice partly cancelled by its backing may peak above the mixture, and int16
    would wrap it (``synthgen.mix.mix`` then fails its full-scale assertion).
    """
    from singerbench.synthgen.mix import FRAME_SECONDS, FULL_SCALE, PEAK, activity

    n = min(len(vocals), len(backing))
    v, a = np.asarray(vocals[:n], dtype=np.float64), np.asarray(backing[:n], dtype=np.float64)
    mask = np.repeat(activity(v, sr), int(round(FRAME_SECONDS * sr)))
    mask = np.concatenate([mask, np.zeros(n - len(mask), dtype=bool)])
    rms_v = np.sqrt(np.mean(v[mask] ** 2)) if mask.any() else np.sqrt(np.mean(v**2))
    rms_a = np.sqrt(np.mean(a**2))
    if rms_v > 0 and rms_a > 0:
        v = v * (10 ** (var_db / 20) * rms_a / rms_v)
    peak = max(np.abs(v + a).max(), np.abs(v).max(), np.abs(a).max())
    scale = PEAK * FULL_SCALE / peak if peak > 0 else 1.0
    vq, aq = np.round(v * scale).astype(np.int16), np.round(a * scale).astype(np.int16)
    return vq, aq, (vq.astype(np.int32) + aq).astype(np.int16)


def random_backing_mixtures(corpus: Manifest, out_dir: Path, seed: int = 0, sustained: bool = False
                            ) -> tuple[list[Track], list[Path]]:
    """The corpus's vocal stems over random-family backings (labelled Tracks), and those backings alone;
    ``sustained``: families of held tones (:func:`random_style`).

    Files already in ``out_dir`` are reused (name ``out_dir`` after the corpus and seed: it is a cache)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tracks, backings = [], []
    for i, t in enumerate(t for t in corpus.tracks if t.vocals is not None):
        style = random_style(rng, sustained)  # drawn for every track: a cache hit leaves the stream as it was
        var_db = float(rng.uniform(-2.0, 6.0))
        mp, vp, bp = (out_dir / f"{t.id}-{i}.{kind}.flac" for kind in ("mix", "vocals", "backing"))
        if not (mp.exists() and vp.exists() and bp.exists()):
            vocals, sr = sf.read(str(t.vocals), dtype="float64")
            backing = render_style(style, len(vocals) / sr, seed * 100003 + i, sr)
            vq, aq, mq = mix_stems(vocals, backing, var_db, sr)
            for path, x in ((bp, aq), (vp, vq), (mp, mq)):
                _write(path, x, sr)
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
    """The corpus's vocal stems over held-out backings: Tracks with ``audio`` (mixture) and ``vocals`` (stem).

    Files already in ``out_dir`` are reused, as in :func:`random_backing_mixtures`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tracks = []
    with_stems = [t for t in corpus.tracks if t.vocals is not None][:limit]
    for i, t in enumerate(with_stems):
        style = styles[i % len(styles)]
        var_db = float(rng.uniform(-2.0, 6.0))
        mp, vp = out_dir / f"{t.id}-{style.name}.flac", out_dir / f"{t.id}-{style.name}.vocals.flac"
        if not (mp.exists() and vp.exists()):
            vocals, sr = sf.read(str(t.vocals), dtype="float64")
            if vocals.ndim == 2:
                vocals = vocals.mean(axis=1)
            backing = render_style(style, len(vocals) / sr, seed * 100003 + i, sr)
            vq, _, mq = mix_stems(vocals, backing, var_db, sr)
            _write(vp, vq, sr)
            _write(mp, mq, sr)
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
    paths = {}
    for name, x in files.items():
        paths[name] = out_dir / f"{name}.flac"
        if not paths[name].exists():
            _write(paths[name], np.clip(x, -1, 1), SR, "PCM_24")
    for i, style in enumerate((*STYLES, *HELD_OUT_STYLES) if held_out else STYLES):
        name = f"backing-{style.name}"
        paths[name] = out_dir / f"{name}.flac"
        if not paths[name].exists():
            x = render_style(style, seconds, seed * 1000 + i)
            _write(paths[name], np.clip(x / (np.abs(x).max() + 1e-12) * 0.8, -1, 1), SR, "PCM_24")
    if recordings is not None:
        paths["vibe_ace (real instrumental)"] = Path(recordings) / "kevin_macleod-vibe_ace.ogg"
    if corpus is not None:
        for t in [t for t in corpus.tracks if t.instrumental is not None][:10]:
            paths[f"synth instrumental {t.id}"] = t.instrumental
    return paths


def negative_rate(paths: dict[str, Path], threshold: float | None = None, weights: Path | None = None,
                  cache: Path | None = None) -> dict[str, float]:
    """Per file, the share of its 3 s segments the detector flags as vocal (must be 0)."""
    from singerbench import vad

    thr = vad.DEFAULT_THRESHOLD if threshold is None else threshold
    w = vad._weights(Path(weights) if weights is not None else vad.WEIGHTS_PATH)
    out = {}
    for name, path in paths.items():
        probs = vad._predict(vad.file_features(path, cache=cache), w)
        out[name] = float((probs >= thr).mean()) if probs.size else 0.0
    return out


#: the ``tiny`` generated singers the detector is fit on, and those it is scored on (never fit). Seed 1, the
#: first choice, does not render with generator v3 (``synthgen.mix.mix`` fails its full-scale assertion on a
#: track whose voice peaks above its mixture).
FIT_SYNTH_SEED = 2
SCORED_SYNTH_SEED = 0
#: random-family backing draws under the fit singers' voices
RANDOM_SEEDS = (1, 2, 3, 4)
#: ... and sustained-family draws (hard negatives, and voices over held tones)
SUSTAINED_SEEDS = (5,)


@dataclass
class Corpora:
    """What :func:`singerbench.vad.main` fits on and scores on (disjoint: other voices, seeds and families)."""

    fit_labelled: list[Manifest]
    fit_voiceless: list[Path]
    scored: dict[str, Manifest]
    voiceless: dict[str, Path]


def build_corpora(recordings: Path, work: Path, cache_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> Corpora:
    """Render (or find in ``work``, a cache) every corpus of the fit and of the scores; ``cache_dir`` is the
    synth corpora's cache root."""
    from singerbench.datasets.synth import corpus_dir, load
    from singerbench.vad import recordings_corpus

    start = time.monotonic()

    def step(what: str) -> None:
        log(f"vad corpora: {what} ({time.monotonic() - start:.0f} s)")

    work = Path(work)
    fit_synth = load(preset="tiny", seed=FIT_SYNTH_SEED, cache_dir=cache_dir, progress=False)
    fit_name = corpus_dir("tiny", FIT_SYNTH_SEED, cache_dir).name
    step(f"fit singers {fit_name}")
    readings = Manifest("readings", recordings_corpus(recordings, work / "readings-seed0", seed=0), ["reader"])
    labelled = [fit_synth, readings]
    voiceless = [t.instrumental for t in fit_synth.tracks if t.instrumental]
    for seed in RANDOM_SEEDS:
        folder = work / f"random{RANDOM_STYLE_VERSION}-{fit_name}-seed{seed}"
        tracks, backings = random_backing_mixtures(fit_synth, folder, seed=seed)
        labelled.append(Manifest("random", tracks, sorted({s for t in tracks for s in t.singers})))
        voiceless += backings
        step(f"random backings, seed {seed}")
    for seed in SUSTAINED_SEEDS:
        tracks, backings = random_backing_mixtures(
            fit_synth, work / f"sustained{RANDOM_STYLE_VERSION}-{fit_name}-seed{seed}", seed=seed, sustained=True)
        labelled.append(Manifest("sustained", tracks, sorted({s for t in tracks for s in t.singers})))
        voiceless += backings
        step(f"sustained-family backings, seed {seed}")
    voiceless += list(negatives(work / "negatives-seed1", seed=1, held_out=False).values())
    scored, scored_voiceless = scored_corpora(recordings, work, cache_dir, log)
    return Corpora(labelled, voiceless, scored, scored_voiceless)


def scored_corpora(recordings: Path, work: Path, cache_dir: Path | None = None,
                   log: Callable[[str], None] = print) -> tuple[dict[str, Manifest], dict[str, Path]]:
    """The scored half of :func:`build_corpora` alone (labelled sets by name, voiceless files by name): what
    scoring the shipped weights needs, without rendering the fit's corpora."""
    from singerbench.datasets.synth import corpus_dir, load
    from singerbench.vad import recordings_corpus

    start = time.monotonic()
    work = Path(work)
    scored_synth = load(preset="tiny", seed=SCORED_SYNTH_SEED, cache_dir=cache_dir, progress=False)
    scored_name = corpus_dir("tiny", SCORED_SYNTH_SEED, cache_dir).name
    held = held_out_mixtures(scored_synth, work / f"held-{scored_name}-seed0", seed=0)
    log(f"vad corpora: scored singers {scored_name} and their held-out backings ({time.monotonic() - start:.0f} s)")
    scored = {
        f"synth tiny seed {SCORED_SYNTH_SEED}": scored_synth,
        "readings seed 7": Manifest(
            "readings", recordings_corpus(recordings, work / "readings-seed7", seed=7, n_tracks=6), ["reader"]),
        "held-out backings": Manifest("held", held, sorted({s for t in held for s in t.singers})),
    }
    voiceless = negatives(work / "negatives-seed0", recordings, scored_synth, seed=0)
    log(f"vad corpora: voiceless files ({time.monotonic() - start:.0f} s)")
    return scored, voiceless
