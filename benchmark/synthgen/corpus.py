"""The corpus: presets, the seeded plan of every track, parallel rendering with resume, and the manifest.

Layout of a rendered corpus folder::

    manifest.json              singerbench-manifest/1 (paths relative to this folder)
    complete.json              written last: preset, seed, generator version, singers, track count
    plan.json                  the key of the corpus being rendered (guards against mixing two corpora)
    tracks/<track id>/mixture.flac, vocals.flac, instrumental.flac   16-bit mono FLAC
    tracks/<track id>/track.json                                      the track's manifest entry, written last

Every random draw of a track comes from a generator seeded by (corpus seed, track id), so a track renders the
same whatever else is rendered beside it, in whatever order or process.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from singerbench.errors import UserError
from singerbench.io import atomic_write, atomic_write_text
from singerbench.manifest import Manifest, Track
from singerbench.synthgen.backing import render_backing
from singerbench.synthgen.clone import CloneParams, vocode
from singerbench.synthgen.melody import phrase, song_form
from singerbench.synthgen.mix import MIN_ACTIVE_SHARE, SEGMENT_SECONDS, mix, vocal_offsets
from singerbench.synthgen.styles import STYLES, HomeStyle
from singerbench.synthgen.system import check_system
from singerbench.synthgen.voices import SYLLABLES, VOICE_BY_ID, VOICES, Note, sing

log = logging.getLogger("singerbench.synthgen")

#: bump whenever a change alters rendered audio or the manifest; part of every cache key
GENERATOR_VERSION = "2"
#: each singer's home style, in voice order
HOME_STYLE: dict[str, HomeStyle] = {v.id: s for v, s in zip(VOICES, STYLES, strict=True)}
SINGER_IDS: tuple[str, ...] = tuple(v.id for v in VOICES)
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Preset:
    """Sizes of one corpus. Every singer has ``train`` + 1 val + 1 test real tracks and ``clones`` clones."""

    name: str
    train: int  # training tracks per singer
    clones: int  # solo clone tracks per singer (voice vocoded, backing in another singer's home style)
    duets: int  # clone tracks with two target singers, in a third singer's home style
    track_seconds: float
    val: int = 1
    test: int = 1
    var_db: tuple[float, float] = (-2.0, 6.0)  # vocal-to-accompaniment ratio range, uniform per track
    sample_rate: int = 16000

    @property
    def tracks_per_singer(self) -> int:
        return self.train + self.val + self.test

    @property
    def n_tracks(self) -> int:
        return len(SINGER_IDS) * (self.tracks_per_singer + self.clones) + self.duets


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", train=3, clones=1, duets=2, track_seconds=19.0),
    "small": Preset("small", train=6, clones=3, duets=4, track_seconds=20.0),
    "full": Preset("full", train=20, clones=6, duets=12, track_seconds=26.0),
}


@dataclass(frozen=True)
class TrackSpec:
    """Everything that decides one track, drawn from the corpus seed before any rendering."""

    id: str
    role: str
    targets: tuple[str, ...]  # whose voice sings (one, or two for a duet)
    context: str  # whose home style the backing is in
    var_db: float
    clone: tuple[CloneParams, ...] = ()  # per target, empty for real tracks
    entropy: tuple[int, ...] = field(default=())


def _rng(seed: int, name: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), stream])


def _clone_params(rng: np.random.Generator) -> CloneParams:
    shift = float(rng.choice([-2.0, -1.0, 1.0, 2.0]))
    warp = float(rng.uniform(0.03, 0.07))
    return CloneParams(
        pitch_shift=shift,
        formant_ratio=round(1.0 + float(np.sign(shift)) * warp, 4),
        aspiration=round(float(rng.uniform(0.05, 0.15)), 4),
    )


def plan(preset: Preset, seed: int) -> list[TrackSpec]:
    """All tracks of a corpus, in manifest order: real tracks singer by singer, then clones, then duets."""
    specs: list[TrackSpec] = []
    lo, hi = preset.var_db

    def add(tid: str, role: str, targets: tuple[str, ...], context: str, clone: bool) -> None:
        rng = _rng(seed, tid, 0)
        var = round(float(rng.uniform(lo, hi)), 3)
        params = tuple(_clone_params(rng) for _ in targets) if clone else ()
        specs.append(TrackSpec(tid, role, targets, context, var, params, (seed, zlib.crc32(tid.encode()))))

    for sid in SINGER_IDS:
        for role, count in (("train", preset.train), ("val", preset.val), ("test", preset.test)):
            for k in range(count):
                add(f"{sid}-{role}{k:02d}", role, (sid,), sid, clone=False)
    for sid in SINGER_IDS:
        others = [s for s in SINGER_IDS if s != sid]
        order = _rng(seed, f"{sid}-contexts", 0).permutation(len(others))
        for j in range(preset.clones):
            add(f"{sid}-clone{j:02d}", "cloned", (sid,), others[int(order[j % len(others)])], clone=True)
    for d in range(preset.duets):
        a, b, c = _rng(seed, f"duet{d:02d}", 0).choice(len(SINGER_IDS), size=3, replace=False)
        pair = tuple(sorted((SINGER_IDS[int(a)], SINGER_IDS[int(b)]), key=SINGER_IDS.index))
        add(f"duet{d:02d}", "cloned", pair, SINGER_IDS[int(c)], clone=True)
    return specs


def min_offsets(role: str) -> int:
    """Vocal segments a track must have: 1 for training, 2 for val/test/cloned (so voting means something)."""
    return 1 if role == "train" else 2


def _write_flac(path: Path, data: np.ndarray, sr: int) -> None:
    atomic_write(path, lambda tmp: sf.write(str(tmp), data, sr, format="FLAC", subtype="PCM_16"))


def _sing_line(voice_id: str, notes: list[Note], shift: float, sr: int) -> tuple[np.ndarray, int]:
    """Festival renders the line ``shift`` semitones low so that a vocoder shift of ``shift`` lands in key."""
    t0 = notes[0].start
    rel = [Note(n.start - t0, n.dur, n.pitch - shift, n.text) for n in notes]
    return sing(VOICE_BY_ID[voice_id], rel, sr), int(round(t0 * sr))


def _render_audio(spec: TrackSpec, preset: Preset, attempt: int) -> tuple[np.ndarray, ...]:
    sr = preset.sample_rate
    n = int(round(preset.track_seconds * sr))
    rng = np.random.default_rng([*spec.entropy, 1, attempt])
    style = HOME_STYLE[spec.context]
    form = song_form(style, preset.track_seconds, rng)
    starts = form.phrase_starts(preset.track_seconds)
    vocals = np.zeros(n)
    for ti, sid in enumerate(spec.targets):
        voice = VOICE_BY_ID[sid]
        bars = starts[ti :: len(spec.targets)]
        notes = [note for b in bars for note in phrase(form, b, voice.low, voice.high, SYLLABLES[voice.language], rng)]
        shift = spec.clone[ti].pitch_shift if spec.clone else 0.0
        line, at = _sing_line(sid, notes, shift, sr)
        if spec.clone:
            line = vocode(line, sr, spec.clone[ti], rng)
        line = line / max(np.sqrt(np.mean(line**2)), 1e-12) * 0.1  # equal level for every voice of a duet
        m = min(len(line), n - at)
        vocals[at : at + m] += line[:m]
    instrumental = render_backing(form, rng, sr, n)
    vq, aq, mq = mix(vocals, instrumental, spec.var_db, sr)
    return vq, aq, mq, np.array([form.bpm])


def render_track(spec: TrackSpec, preset: Preset, out: Path) -> dict:
    """Render one track into ``out/tracks/<id>/`` and return (and write, last) its manifest entry."""
    folder = out / "tracks" / spec.id
    sr = preset.sample_rate
    for attempt in range(MAX_ATTEMPTS):
        vq, aq, mq, bpm = _render_audio(spec, preset, attempt)
        offsets = vocal_offsets(vq, sr)
        if len(offsets) >= min_offsets(spec.role):
            break
    else:
        raise RuntimeError(f"track {spec.id}: fewer than {min_offsets(spec.role)} vocal segments after retries")
    for name, data in (("vocals", vq), ("instrumental", aq), ("mixture", mq)):
        _write_flac(folder / f"{name}.flac", data, sr)
    style = HOME_STYLE[spec.context]
    extra: dict = {
        "context_singer": spec.context,
        "tempo_bpm": float(bpm[0]),
        "key": style.key_name,
        "var_db": spec.var_db,
        "attempt": attempt,
    }
    if spec.clone:
        extra["clone"] = {sid: p.to_dict() for sid, p in zip(spec.targets, spec.clone, strict=True)}
    entry = {
        "id": spec.id,
        "audio": f"tracks/{spec.id}/mixture.flac",
        "vocals": f"tracks/{spec.id}/vocals.flac",
        "instrumental": f"tracks/{spec.id}/instrumental.flac",
        "singers": list(spec.targets),
        "role": spec.role,
        "vocal_offsets": list(offsets),
        "genre": style.name,
        "language": "+".join(dict.fromkeys(VOICE_BY_ID[s].language for s in spec.targets)),
        "extra": extra,
    }
    atomic_write_text(folder / "track.json", json.dumps(entry, indent=1) + "\n")
    return entry


def _key(preset: Preset, seed: int, singers: Sequence[str]) -> dict:
    return {"preset": preset.name, "seed": int(seed), "generator_version": GENERATOR_VERSION,
            "singers": list(singers)}


def _done_entry(out: Path, spec: TrackSpec) -> dict | None:
    folder = out / "tracks" / spec.id
    meta = folder / "track.json"
    if not meta.is_file() or not all((folder / f"{s}.flac").is_file() for s in ("vocals", "instrumental", "mixture")):
        return None
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError:
        return None


def is_complete(out: Path, preset: str, seed: int, singers: Sequence[str] | None = None) -> bool:
    """Whether ``out`` holds a finished corpus of this preset, seed, singer set and generator version."""
    p = _preset(preset)
    marker = Path(out) / "complete.json"
    if not marker.is_file() or not (Path(out) / "manifest.json").is_file():
        return False
    try:
        doc = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    key = _key(p, seed, _singers(singers))
    return {k: doc.get(k) for k in key} == key


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown synth preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def _singers(singers: Sequence[str] | None) -> list[str]:
    if singers is None:
        return list(SINGER_IDS)
    unknown = [s for s in singers if s not in SINGER_IDS]
    if unknown:
        raise UserError(f"unknown synth singer {unknown[0]!r}; the singers are {', '.join(SINGER_IDS)}")
    return [s for s in SINGER_IDS if s in set(singers)]


def _manifest(preset: Preset, seed: int, singers: list[str], entries: list[dict], out: Path) -> Manifest:
    tracks = [
        Track(
            id=e["id"], audio=out / e["audio"], singers=tuple(e["singers"]), role=e["role"],
            vocal_offsets=tuple(e["vocal_offsets"]), vocals=out / e["vocals"],
            instrumental=out / e["instrumental"], genre=e["genre"], language=e["language"], extra=e["extra"],
        )
        for e in entries
    ]
    extra = {
        **_key(preset, seed, singers),
        "preset_sizes": asdict(preset),
        "sample_rate": preset.sample_rate,
        "var_db_range": list(preset.var_db),
        "segment_seconds": SEGMENT_SECONDS,
        "min_active_share": MIN_ACTIVE_SHARE,
        "voices": {
            v.id: {"festival_voice": v.festival_name, "package": v.package, "language": v.language,
                   "range_midi": [v.low, v.high], "home_style": HOME_STYLE[v.id].name}
            for v in VOICES if v.id in singers
        },
        "home_styles": {
            s.name: {"programs": [s.chords_program, s.bass_program, s.pad_program], "tempo": list(s.tempo),
                     "key": s.key_name, "beats_per_bar": s.beats_per_bar}
            for v, s in zip(VOICES, STYLES, strict=True) if v.id in singers
        },
    }
    return Manifest(
        name="synth",
        tracks=tracks,
        singers=singers,
        generated=True,
        description=(
            "Generated singers (singerbench synth): ten real recorded Festival diphone voices singing generated "
            "melodies over generated backings in each singer's home style, plus vocoded clones on other "
            f"singers' backings. Preset {preset.name}, seed {seed}, generator v{GENERATOR_VERSION}."
        ),
        extra=extra,
    )


def render_corpus(
    preset: str,
    seed: int,
    out: Path,
    progress: bool = True,
    workers: int = 2,
    singers: Sequence[str] | None = None,
) -> Path:
    """Render a corpus into ``out`` (or find it complete there) and return ``out/manifest.json``.

    Tracks already rendered by an interrupted run are kept; a complete corpus of the same key renders
    nothing. ``singers`` restricts the corpus to tracks whose target voices are all among them (the plan, and
    so every kept track, is the same as in the full corpus).
    """
    p = _preset(preset)
    chosen = _singers(singers)
    out = Path(out)
    manifest_path = out / "manifest.json"
    if is_complete(out, preset, seed, chosen):
        return manifest_path
    check_system()
    key = _key(p, seed, chosen)
    plan_file = out / "plan.json"
    if plan_file.is_file():
        try:
            previous = json.loads(plan_file.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous is not None and previous != key:
            raise UserError(
                f"{out} holds a different synth corpus ({previous.get('preset')}, seed {previous.get('seed')}, "
                f"v{previous.get('generator_version')}); choose an empty folder or delete this one"
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan_file, json.dumps(key, indent=1) + "\n")

    specs = [s for s in plan(p, seed) if all(t in chosen for t in s.targets)]
    entries: dict[str, dict] = {}
    todo = []
    for s in specs:
        done = _done_entry(out, s)
        if done is not None:
            entries[s.id] = done
        else:
            todo.append(s)
    if todo:
        log.info("rendering %d of %d tracks of the generated singers (%s, seed %d) into %s: once, then cached",
                 len(todo), len(specs), preset, seed, out)
    bar = tqdm(total=len(todo), desc=f"synth {preset} (seed {seed})", unit="track", disable=not progress)
    try:
        if workers <= 1 or len(todo) <= 1:
            for s in todo:
                entries[s.id] = render_track(s, p, out)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
                futures = {pool.submit(render_track, s, p, out): s for s in todo}
                for fut in as_completed(futures):
                    entries[futures[fut].id] = fut.result()
                    bar.update()
    finally:
        bar.close()
    manifest = _manifest(p, seed, chosen, [entries[s.id] for s in specs], out)
    manifest.to_json(manifest_path)
    atomic_write_text(out / "complete.json", json.dumps({**key, "n_tracks": len(specs)}, indent=1) + "\n")
    return manifest_path
