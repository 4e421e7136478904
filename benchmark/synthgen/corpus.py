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
import os
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from singerbench.errors import UserError
from singerbench.io import atomic_write, atomic_write_text
from singerbench.manifest import Manifest, Track
from singerbench.synthgen import realism
from singerbench.synthgen.backing import render_backing
from singerbench.synthgen.clone import CloneParams, vocode
from singerbench.synthgen.engines import ENGINES, prepare, sing
from singerbench.synthgen.melody import phrase, song_form
from singerbench.synthgen.mix import MIN_ACTIVE_SHARE, SEGMENT_SECONDS, mix, vocal_offsets
from singerbench.synthgen.styles import STYLES, HomeStyle, singer_style
from singerbench.synthgen.system import check_system
from singerbench.synthgen.voices import FESTIVAL_IDS, PERSONS, VOICE_BY_ID, Note, other_voices, syllables

log = logging.getLogger("singerbench.synthgen")

#: bump whenever a change alters rendered audio or the manifest; part of every cache key
GENERATOR_VERSION = "3"
#: the singers of the festival presets (tiny, small, full) and their fixed home styles, in voice order
SINGER_IDS: tuple[str, ...] = FESTIVAL_IDS
HOME_STYLE: dict[str, HomeStyle] = dict(zip(FESTIVAL_IDS, STYLES, strict=True))
MAX_ATTEMPTS = 6
#: folder (inside a corpus) of the speech voices' analysed syllables, shared by the render processes
BANK = "voicebank"
#: seconds between progress log lines when no progress bar is shown
LOG_INTERVAL_S = 30.0


@dataclass(frozen=True)
class Preset:
    """Sizes and difficulty of one corpus. Every singer has ``train``(..``train_max``) + 1 val + 1 test real
    tracks and ``clones`` clones; see docs/synth.md for each field."""

    name: str
    train: int  # training tracks per singer (the lower bound when train_max is set)
    clones: int  # solo clone tracks per singer (voice vocoded, backing in another singer's home style)
    duets: int  # clone tracks with two target singers, in a third singer's home style
    track_seconds: float
    val: int = 1
    test: int = 1
    var_db: tuple[float, float] = (-2.0, 6.0)  # vocal-to-accompaniment ratio range, uniform per track
    sample_rate: int = 16000
    train_max: int = 0  # > 0: each singer's training-track count is drawn uniformly in [train, train_max]
    voices: str = "festival"  # "festival": the ten Festival voices; "all": every installed person
    engine_swaps: bool = False  # clone tracks: the same person through another engine's voice
    confound: float = 1.0  # probability that a real song's backing is in its singer's home style
    reverb: bool = False  # room reverb on the voice
    master: bool = False  # EQ and compression on the mix
    mp3_share: float = 0.0  # share of tracks that go through an mp3 round trip

    def singers(self) -> list[str]:
        """The singers (persons) of this preset: the Festival ten, or every person whose voice is installed."""
        if self.voices == "festival":
            return list(FESTIVAL_IDS)
        return [p for p, v in PERSONS.items() if ENGINES[v.engine].installed(v)]


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", train=3, clones=1, duets=2, track_seconds=19.0),
    "small": Preset("small", train=6, clones=3, duets=4, track_seconds=20.0),
    "full": Preset("full", train=20, clones=6, duets=12, track_seconds=26.0),
    "large": Preset("large", train=2, train_max=10, clones=1, duets=20, track_seconds=32.0, voices="all",
                    engine_swaps=True, confound=0.8, reverb=True, master=True, mp3_share=0.3,
                    var_db=(-4.0, 6.0)),
}


@dataclass(frozen=True)
class TrackSpec:
    """Everything that decides one track, drawn from the corpus seed before any rendering."""

    id: str
    role: str
    targets: tuple[str, ...]  # whose voice sings (one person, or two for a duet)
    context: str  # whose home style the backing is in
    var_db: float
    clone: tuple[CloneParams, ...] = ()  # per target, empty when the voice is not vocoded
    entropy: tuple[int, ...] = field(default=())
    voices: tuple[str, ...] = ()  # the voice (table id) singing for each target
    kind: str = "real"  # real, vocoder, duet or engine_swap
    fx: realism.Realism = field(default_factory=realism.Realism)


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


def home_style(preset: Preset, seed: int, singer: str) -> HomeStyle:
    """A singer's home style: fixed for the Festival ten; otherwise a genre family varied by instruments, key
    and tempo, drawn from (seed, singer) alone so it does not depend on which other singers are installed."""
    if preset.voices == "festival":
        return HOME_STYLE[singer]
    rng = _rng(seed, f"{singer}-home", 0)
    return singer_style(STYLES[int(rng.integers(len(STYLES)))], rng)


def train_count(preset: Preset, seed: int, singer: str) -> int:
    if not preset.train_max:
        return preset.train
    return int(_rng(seed, f"{singer}-train", 0).integers(preset.train, preset.train_max + 1))


def plan(preset: Preset, seed: int, singers: Sequence[str] | None = None) -> list[TrackSpec]:
    """All tracks of a corpus, in manifest order: real tracks singer by singer, then clones, engine swaps,
    then duets. ``singers``: the preset's singers (default: ``preset.singers()``)."""
    everyone = list(singers) if singers is not None else preset.singers()
    specs: list[TrackSpec] = []
    lo, hi = preset.var_db

    def add(tid: str, role: str, targets: tuple[str, ...], context: str | None, kind: str,
            voices: tuple[str, ...] | None = None) -> None:
        rng = _rng(seed, tid, 0)
        var = round(float(rng.uniform(lo, hi)), 3)
        params = tuple(_clone_params(rng) for _ in targets) if kind in ("vocoder", "duet") else ()
        home, other = rng.random(), int(rng.integers(max(1, len(everyone) - 1)))
        if context is None:  # a real song: its singer's home style with probability `confound`
            others = [s for s in everyone if s != targets[0]]
            context = targets[0] if home < preset.confound or not others else others[other % len(others)]
        fx = realism.draw(rng, preset.reverb, preset.master, preset.mp3_share)
        specs.append(TrackSpec(tid, role, targets, context, var, params, (seed, zlib.crc32(tid.encode())),
                               voices or targets, kind, fx))

    for sid in everyone:
        counts = (("train", train_count(preset, seed, sid)), ("val", preset.val), ("test", preset.test))
        for role, count in counts:
            for k in range(count):
                add(f"{sid}-{role}{k:02d}", role, (sid,), None, "real")
    for sid in everyone:
        others = [s for s in everyone if s != sid]
        order = _rng(seed, f"{sid}-contexts", 0).permutation(len(others))
        for j in range(preset.clones):
            add(f"{sid}-clone{j:02d}", "cloned", (sid,), others[int(order[j % len(others)])], "vocoder")
        if preset.engine_swaps:
            installed = [v for v in other_voices(sid) if ENGINES[v.engine].installed(v)]
            for j, v in enumerate(installed):
                ctx = others[int(order[(preset.clones + j) % len(others)])]
                add(f"{sid}-swap-{v.id}", "cloned", (sid,), ctx, "engine_swap", voices=(v.id,))
    for d in range(preset.duets):
        a, b, c = _rng(seed, f"duet{d:02d}", 0).choice(len(everyone), size=3, replace=False)
        pair = tuple(sorted((everyone[int(a)], everyone[int(b)]), key=everyone.index))
        add(f"duet{d:02d}", "cloned", pair, everyone[int(c)], "duet")
    return specs


def min_offsets(role: str) -> int:
    """Vocal segments a track must have: 1 for training, 2 for val/test/cloned (so voting means something)."""
    return 1 if role == "train" else 2


def _write_flac(path: Path, data: np.ndarray, sr: int) -> None:
    atomic_write(path, lambda tmp: sf.write(str(tmp), data, sr, format="FLAC", subtype="PCM_16"))


def _sing_line(voice_id: str, notes: list[Note], shift: float, sr: int, bank: Path) -> tuple[np.ndarray, int]:
    """The voice sings the line ``shift`` semitones low so that a vocoder shift of ``shift`` lands in key."""
    t0 = notes[0].start
    rel = [Note(n.start - t0, n.dur, n.pitch - shift, n.text) for n in notes]
    return sing(VOICE_BY_ID[voice_id], rel, sr, bank), int(round(t0 * sr))


def _render_audio(spec: TrackSpec, preset: Preset, seed: int, attempt: int, bank: Path) -> tuple[np.ndarray, ...]:
    sr = preset.sample_rate
    n = int(round(preset.track_seconds * sr))
    rng = np.random.default_rng([*spec.entropy, 1, attempt])
    style = home_style(preset, seed, spec.context)
    form = song_form(style, preset.track_seconds, rng)
    starts = form.phrase_starts(preset.track_seconds)
    vocals = np.zeros(n)
    for ti, vid in enumerate(spec.voices):
        voice = VOICE_BY_ID[vid]
        low, high = voice.range
        bars = starts[ti :: len(spec.targets)]
        notes = [note for b in bars for note in phrase(form, b, low, high, syllables(voice.language), rng)]
        shift = spec.clone[ti].pitch_shift if spec.clone else 0.0
        line, at = _sing_line(vid, notes, shift, sr, bank)
        if spec.clone:
            line = vocode(line, sr, spec.clone[ti], rng)
        line = line / max(np.sqrt(np.mean(line**2)), 1e-12) * 0.1  # equal level for every voice of a duet
        m = min(len(line), n - at)
        vocals[at : at + m] += line[:m]
    vocals = realism.reverb(vocals, sr, spec.fx, rng)
    instrumental = render_backing(form, rng, sr, n)
    vq, aq, mq = mix(vocals, instrumental, spec.var_db, sr, post=lambda v, a: realism.master(v, a, sr, spec.fx))
    return vq, aq, mq, np.array([form.bpm])


def render_track(spec: TrackSpec, preset: Preset, seed: int, out: Path) -> dict:
    """Render one track into ``out/tracks/<id>/`` and return (and write, last) its manifest entry."""
    folder = out / "tracks" / spec.id
    sr = preset.sample_rate
    for attempt in range(MAX_ATTEMPTS):
        vq, aq, mq, bpm = _render_audio(spec, preset, seed, attempt, out / BANK)
        offsets = vocal_offsets(vq, sr)
        if len(offsets) >= min_offsets(spec.role):
            break
    else:
        raise RuntimeError(f"track {spec.id}: fewer than {min_offsets(spec.role)} vocal segments after retries")
    for name, data in (("vocals", vq), ("instrumental", aq), ("mixture", mq)):
        _write_flac(folder / f"{name}.flac", data, sr)
    style = home_style(preset, seed, spec.context)
    extra: dict = {
        "context_singer": spec.context,
        "in_home_style": spec.context in spec.targets,
        "tempo_bpm": float(bpm[0]),
        "key": style.key_name,
        "var_db": spec.var_db,
        "attempt": attempt,
        "kind": spec.kind,
        "voices": list(spec.voices),
        "engines": [VOICE_BY_ID[v].engine for v in spec.voices],
        "realism": spec.fx.to_dict(),
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
        "language": "+".join(dict.fromkeys(VOICE_BY_ID[v].language for v in spec.voices)),
        "extra": extra,
    }
    atomic_write_text(folder / "track.json", json.dumps(entry, indent=1) + "\n")
    return entry


def _key(preset: Preset, seed: int, singers: Sequence[str]) -> dict:
    return {"preset": preset.name, "seed": int(seed), "generator_version": GENERATOR_VERSION,
            "confound": preset.confound, "singers": list(singers)}


def _done_entry(out: Path, spec: TrackSpec) -> dict | None:
    folder = out / "tracks" / spec.id
    meta = folder / "track.json"
    if not meta.is_file() or not all((folder / f"{s}.flac").is_file() for s in ("vocals", "instrumental", "mixture")):
        return None
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError:
        return None


def resolve_preset(name: str, confound: float | None = None) -> Preset:
    """The named preset, with its ``confound`` replaced when one is given (a UserError for a bad name/value)."""
    if name not in PRESETS:
        raise UserError(f"unknown synth preset {name!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    if confound is None:
        return p
    try:
        c = float(confound)
    except (TypeError, ValueError):
        raise UserError(f"synth confound must be a number between 0 and 1, not {confound!r}") from None
    if not 0.0 <= c <= 1.0:
        raise UserError(f"synth confound must lie between 0 and 1, not {c}")
    return replace(p, confound=c)


def is_complete(out: Path, preset: str, seed: int, singers: Sequence[str] | None = None,
                confound: float | None = None) -> bool:
    """Whether ``out`` holds a finished corpus of this preset, seed, confound, singer set and generator version."""
    p = resolve_preset(preset, confound)
    marker = Path(out) / "complete.json"
    if not marker.is_file() or not (Path(out) / "manifest.json").is_file():
        return False
    try:
        doc = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    key = _key(p, seed, _singers(p, singers))
    return {k: doc.get(k) for k in key} == key


def _singers(preset: Preset, singers: Sequence[str] | None) -> list[str]:
    everyone = preset.singers()
    if singers is None:
        return everyone
    unknown = [s for s in singers if s not in everyone]
    if unknown:
        known = ", ".join(everyone[:12]) + (" ..." if len(everyone) > 12 else "")
        raise UserError(f"unknown synth singer {unknown[0]!r} for preset {preset.name}; the singers are {known}")
    return [s for s in everyone if s in set(singers)]


def _voice_card(preset: Preset, seed: int, sid: str) -> dict:
    v = VOICE_BY_ID[sid]
    return {"engine": v.engine, "voice": v.name, "package": v.package, "language": v.language, "sex": v.sex,
            "licence": v.licence, "range_midi": list(v.range), "home_style": home_style(preset, seed, sid).name,
            "other_voices": [o.id for o in other_voices(sid)]}


def _manifest(preset: Preset, seed: int, singers: list[str], entries: list[dict], out: Path) -> Manifest:
    tracks = [
        Track(
            id=e["id"], audio=out / e["audio"], singers=tuple(e["singers"]), role=e["role"],
            vocal_offsets=tuple(e["vocal_offsets"]), vocals=out / e["vocals"],
            instrumental=out / e["instrumental"], genre=e["genre"], language=e["language"], extra=e["extra"],
        )
        for e in entries
    ]
    styles = {sid: home_style(preset, seed, sid) for sid in singers}
    extra = {
        **_key(preset, seed, singers),
        "preset_sizes": asdict(preset),
        "sample_rate": preset.sample_rate,
        "var_db_range": list(preset.var_db),
        "segment_seconds": SEGMENT_SECONDS,
        "min_active_share": MIN_ACTIVE_SHARE,
        "voices": {sid: _voice_card(preset, seed, sid) for sid in singers},
        "home_styles": {
            sid: {"family": s.name, "programs": [s.chords_program, s.bass_program, s.pad_program],
                  "tempo": list(s.tempo), "key": s.key_name, "beats_per_bar": s.beats_per_bar}
            for sid, s in styles.items()
        },
    }
    engines = sorted({VOICE_BY_ID[s].engine for s in singers})
    return Manifest(
        name="synth",
        tracks=tracks,
        singers=singers,
        generated=True,
        description=(
            f"Generated singers (singerbench synth): {len(singers)} real recorded voices ({', '.join(engines)}) "
            "singing generated melodies over generated backings in each singer's home style (with probability "
            f"{preset.confound}), plus clones on other singers' backings. Preset {preset.name}, seed {seed}, "
            f"generator v{GENERATOR_VERSION}."
        ),
        extra=extra,
    )


def render_corpus(
    preset: str,
    seed: int,
    out: Path,
    progress: bool = True,
    workers: int | None = None,
    singers: Sequence[str] | None = None,
    confound: float | None = None,
) -> Path:
    """Render a corpus into ``out`` (or find it complete there) and return ``out/manifest.json``.

    Tracks already rendered by an interrupted run are kept; a complete corpus of the same key renders
    nothing. ``singers`` restricts the corpus to tracks whose target voices are all among them (the plan, and
    so every kept track, is the same as in the full corpus). ``workers``: render processes (default: all cores).
    ``confound`` replaces the preset's probability that a real song's backing is in its singer's home style.
    """
    p = resolve_preset(preset, confound)
    out = Path(out)
    manifest_path = out / "manifest.json"
    if is_complete(out, preset, seed, singers, confound):
        return manifest_path
    check_system(p.voices)
    chosen = _singers(p, singers)
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
                f"confound {previous.get('confound')}, v{previous.get('generator_version')}, "
                f"{len(previous.get('singers') or [])} singers); choose an empty folder or delete this one"
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
    workers = workers or os.cpu_count() or 1
    if todo:
        log.info("rendering %d of %d tracks of the generated singers (%s, seed %d, %d singers, %d processes) "
                 "into %s: once, then cached", len(todo), len(specs), preset, seed, len(chosen), workers, out)
    bar = tqdm(total=len(todo), desc=f"synth {preset} (seed {seed})", unit="track", disable=not progress)
    started = last_log = time.monotonic()

    def tick(done: int) -> None:
        nonlocal last_log
        bar.update()
        now = time.monotonic()
        if not progress and now - last_log >= LOG_INTERVAL_S:
            last_log = now
            log.info("synth %s: %d/%d tracks rendered (%.0f s)", preset, done, len(todo), now - started)

    voices = [VOICE_BY_ID[v] for v in dict.fromkeys(v for s in todo for v in s.voices)]
    try:
        if workers <= 1 or len(todo) <= 1:
            for v in voices:
                prepare(v, p.sample_rate, out / BANK)
            for i, s in enumerate(todo):
                entries[s.id] = render_track(s, p, seed, out)
                tick(i + 1)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
                for fut in [pool.submit(prepare, v, p.sample_rate, out / BANK) for v in voices]:
                    fut.result()  # every voice bank before the tracks, so no syllable is spoken twice
                futures = {pool.submit(render_track, s, p, seed, out): s for s in todo}
                for i, fut in enumerate(as_completed(futures)):
                    entries[futures[fut].id] = fut.result()
                    tick(i + 1)
    finally:
        bar.close()
    manifest = _manifest(p, seed, chosen, [entries[s.id] for s in specs], out)
    manifest.to_json(manifest_path)
    atomic_write_text(out / "complete.json", json.dumps({**key, "n_tracks": len(specs)}, indent=1) + "\n")
    if todo:
        log.info("synth %s: %d tracks rendered in %.0f s", preset, len(todo), time.monotonic() - started)
    return manifest_path
