"""Build singer splits in the paper's published layout from a dataset's own metadata (``singerbench splits build``).

For when the published ``splits.zip`` is not at hand, or for new data. The recipe follows the paper: keep the
tracks that are vocal in at least 50 % of their 3 s segments, the singers with at least 5 such tracks, then
draw (with a seed) one validation and one test track per singer and train on the rest. Vocal activity comes
from :mod:`singerbench.vad` run on the audio, from a precomputed vocal table, or, in metadata-only mode, is
skipped (every 6 s hop of the track is then listed as a vocal segment, and the report says so).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from singerbench.errors import UserError
from singerbench.io import atomic_write, atomic_write_text
from singerbench.vad import MIN_VOCAL_SHARE, offsets_from_flags, track_is_vocal

DATASETS = ("mtg", "fma")
TABLE_FORMAT = "singerbench-vocal-table/1"
#: VAD segment length of the vocal filter and the segment length of the listed vocal offsets.
VAD_SECONDS = 3.0
SEGMENT_SECONDS = 6.0
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Candidate:
    """One track of the metadata: who sings it, where its audio lies (``file_id``) and how long it is."""

    file_id: str
    artist: str
    duration: float | None
    instrumental: bool = False


@dataclass
class BuildReport:
    """What each filter kept: (stage, artists, tracks) rows, plus the files written."""

    stages: list[tuple[str, int, int]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, stage: str, tracks: list[Candidate]) -> None:
        self.stages.append((stage, len({t.artist for t in tracks}), len(tracks)))

    def format(self) -> str:
        width = max(len(s) for s, _, _ in self.stages)
        lines = [f"{'stage':<{width}}  artists   tracks"]
        lines += [f"{s:<{width}}  {a:>7}  {t:>7}" for s, a, t in self.stages]
        return "\n".join(lines + self.notes)


# --- metadata --------------------------------------------------------------------------------------------


def _duration(text: str) -> float | None:
    """``168``, ``168.4``, ``02:48`` or ``1:02:48`` to seconds; None when empty or unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if ":" in text:
            secs = 0.0
            for part in text.split(":"):
                secs = secs * 60 + float(part)
            return secs
        return float(text)
    except ValueError:
        return None


def read_mtg_metadata(path: Path) -> list[Candidate]:
    """MTG-Jamendo's TSV (``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS...``), gzipped or not."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"metadata file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\n").split("\t")
        need = ("ARTIST_ID", "PATH", "DURATION")
        if any(c not in header for c in need):
            raise UserError(f"{path} is not MTG-Jamendo metadata: its header lacks {', '.join(need)}")
        ia, ip, idur = (header.index(c) for c in need)
        out = []
        for n, line in enumerate(f, start=2):
            cols = line.rstrip("\n").split("\t")
            if len(cols) <= max(ia, ip, idur):
                if line.strip():
                    raise UserError(f"{path}:{n}: expected at least {max(ia, ip, idur) + 1} tab-separated fields")
                continue
            out.append(Candidate(file_id=cols[ip], artist=cols[ia], duration=_duration(cols[idur])))
    return out


def read_fma_metadata(path: Path) -> list[Candidate]:
    """FMA's ``raw_tracks.csv`` (one header row) or ``tracks.csv`` (three header rows: group, field, index)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"metadata file {path} does not exist")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = csv.reader(f)
        try:
            first = next(rows)
        except StopIteration:
            raise UserError(f"metadata file {path} is empty") from None
        if "track_id" in first and "artist_id" in first:  # raw_tracks.csv
            cols = {name: i for i, name in enumerate(first)}
            ti, ai = cols["track_id"], cols["artist_id"]
            di, ii = cols.get("track_duration"), cols.get("track_instrumental")
        else:  # tracks.csv: ("artist", "id"), ("track", "duration"), ...
            second = next(rows, [])
            next(rows, None)  # the "track_id" index row
            names = {f"{g}.{n}": i for i, (g, n) in enumerate(zip(first, second, strict=False))}
            if "artist.id" not in names:
                raise UserError(f"{path} is neither FMA raw_tracks.csv nor tracks.csv (no artist id column)")
            ti, ai = 0, names["artist.id"]
            di, ii = names.get("track.duration"), names.get("track.instrumental")
        out = []
        for cells in rows:
            if len(cells) <= max(ti, ai):
                continue
            try:
                tid = int(float(cells[ti]))
            except ValueError:
                continue
            artist = cells[ai].strip()
            if not artist:
                continue
            dur = _duration(cells[di]) if di is not None and di < len(cells) else None
            instr = ii is not None and ii < len(cells) and cells[ii].strip() in ("1", "True", "true")
            out.append(Candidate(f"{tid:06d}.mp3", artist, dur, instr))
    return out


def audio_paths(dataset: str, data_root: Path) -> Callable[[str], Path]:
    """``file_id`` → its audio file under ``data_root``, as the fma / mtg adapters map it."""
    from singerbench.datasets import all_datasets
    from singerbench.datasets.published import LAYOUTS

    all_datasets()  # importing the adapters registers their layouts
    layout = LAYOUTS[dataset]
    root = layout.audio_root(Path(data_root))
    return lambda file_id: layout.audio_path(root, file_id)


# --- vocal table -----------------------------------------------------------------------------------------


def read_vocal_table(path: Path) -> dict[str, list[int]]:
    """``{file_id: [0/1 per 3 s segment]}`` from a table written by :func:`write_vocal_table`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"vocal table {path} cannot be read: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT or not isinstance(doc.get("tracks"), dict):
        raise UserError(f"vocal table {path} is not a {TABLE_FORMAT} file")
    if float(doc.get("segment_seconds", VAD_SECONDS)) != VAD_SECONDS:
        raise UserError(f"vocal table {path} uses {doc['segment_seconds']} s segments; the filter needs 3 s")
    out = {}
    for fid, flags in doc["tracks"].items():
        if not isinstance(flags, list) or any(f not in (0, 1) for f in flags):
            raise UserError(f"vocal table {path}: track {fid} must map to a list of 0/1 flags")
        out[str(fid)] = [int(f) for f in flags]
    return out


def write_vocal_table(path: Path, table: dict[str, list[int]], threshold: float) -> None:
    doc = {"format": TABLE_FORMAT, "segment_seconds": VAD_SECONDS, "threshold": threshold, "tracks": table}
    atomic_write_text(Path(path), json.dumps(doc, separators=(",", ":")) + "\n")


def compute_vocal_table(
    dataset: str,
    candidates: list[Candidate],
    data_root: Path,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, list[int]], list[str]]:
    """Run the VAD on every candidate's audio; returns (table, file_ids whose audio is missing)."""
    from singerbench import vad

    thr = vad.DEFAULT_THRESHOLD if threshold is None else threshold
    table: dict[str, list[int]] = {}
    missing = []
    audio_path = audio_paths(dataset, data_root)
    for i, c in enumerate(candidates):
        p = audio_path(c.file_id)
        if not p.is_file():
            missing.append(c.file_id)
            continue
        wave, sr = vad.read_mono(p)
        table[c.file_id] = [int(x) for x in vad.detect_vocal_segments(wave, sr, VAD_SECONDS, thr) >= thr]
        if progress:
            progress(i + 1, len(candidates))
    return table, missing


def hop_offsets(duration: float) -> list[float]:
    """Every full 6 s hop of a track: the metadata-only stand-in for vocal offsets."""
    n = int(duration // SEGMENT_SECONDS)
    return [i * SEGMENT_SECONDS for i in range(n)]


# --- building --------------------------------------------------------------------------------------------


def draw_splits(
    tracks: dict[str, list[tuple[str, list[float]]]], seed: int
) -> dict[str, dict[str, list[tuple[str, list[float]]]]]:
    """Per singer (sorted), one val and one test track drawn with ``seed``; the rest, in file order, train."""
    rng = random.Random(seed)
    out: dict[str, dict[str, list[tuple[str, list[float]]]]] = {"train": {}, "val": {}, "test": {}}
    for artist in sorted(tracks):
        items = sorted(tracks[artist])
        val, test = rng.sample(range(len(items)), 2)
        out["val"][artist] = [items[val]]
        out["test"][artist] = [items[test]]
        out["train"][artist] = [it for i, it in enumerate(items) if i not in (val, test)]
    return out


def published_docs(dataset: str, split: dict[str, dict[str, list[tuple[str, list[float]]]]]) -> dict[str, dict]:
    """The three JSON documents in the exact published layout of ``dataset``."""

    def item(t: tuple[str, list[float]]) -> dict:
        return {"file_id": t[0], "vocal_segs": t[1]}

    docs: dict[str, dict] = {}
    for role, by_artist in split.items():
        doc = {}
        for artist, items in by_artist.items():
            value: object = [item(t) for t in items] if role == "train" else item(items[0])
            doc[artist] = {"track": value} if dataset == "fma" else value
        docs[role] = doc
    return docs


def write_published(dataset: str, docs: dict[str, dict], out: Path) -> list[Path]:
    """Write ``{dataset}_{role}_set.json`` into folder ``out``, or into zip ``out`` (``*.zip``), atomically.

    A zip gets the release's inner folders (``splits/FMA``, ``splits/mtg-jamendo-dataset``) and fixed
    timestamps, so the same split gives the same bytes.
    """
    out = Path(out)
    texts = {f"{dataset}_{role}_set.json": json.dumps(docs[role]) + "\n" for role in ("train", "val", "test")}
    if out.suffix == ".zip":
        inner = "splits/FMA" if dataset == "fma" else "splits/mtg-jamendo-dataset"

        def write(tmp: Path) -> None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, text in texts.items():
                    info = zipfile.ZipInfo(f"{inner}/{name}", date_time=_ZIP_DATE)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, text)
            tmp.write_bytes(buf.getvalue())

        atomic_write(out, write)
        return [out]
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    paths = []
    for name, text in texts.items():
        atomic_write_text(out / name, text)
        paths.append(out / name)
    return paths


def build_splits(
    dataset: str,
    metadata: Path,
    out: Path | None,
    *,
    data_root: Path | None = None,
    vocal_table: Path | None = None,
    min_vocal_ratio: float = MIN_VOCAL_SHARE,
    min_tracks: int = 5,
    seed: int = 0,
    vad_threshold: float | None = None,
    keep_instrumental: bool = False,
) -> tuple[dict[str, dict], BuildReport]:
    """Filter the metadata, draw the split, write it to ``out`` (folder or ``.zip``; None: do not write).

    Vocal activity: ``vocal_table`` if that file exists; else the VAD on the audio under ``data_root``
    (and the table is saved to ``vocal_table`` when a path is given); else metadata-only mode.
    """
    if dataset not in DATASETS:
        raise UserError(f"split builder: unknown dataset {dataset!r}; choose {' or '.join(DATASETS)}")
    if not 0.0 <= min_vocal_ratio <= 1.0:
        raise UserError(f"--min-vocal-ratio must lie in [0, 1], got {min_vocal_ratio}")
    if min_tracks < 3:
        raise UserError(f"--min-tracks must be at least 3 (one train, one val, one test), got {min_tracks}")
    cands = read_mtg_metadata(metadata) if dataset == "mtg" else read_fma_metadata(metadata)
    if not cands:
        raise UserError(f"metadata file {metadata} lists no tracks")
    report = BuildReport()
    report.add("metadata", cands)
    seen: set[str] = set()
    unique = []
    for c in cands:
        if c.file_id not in seen:
            seen.add(c.file_id)
            unique.append(c)
    cands = unique
    if not keep_instrumental and any(c.instrumental for c in cands):
        cands = [c for c in cands if not c.instrumental]
        report.add("not tagged instrumental", cands)

    table: dict[str, list[int]] | None = None
    if vocal_table is not None and Path(vocal_table).is_file():
        table = read_vocal_table(Path(vocal_table))
        report.notes.append(f"vocal activity: precomputed table {vocal_table}")
    elif data_root is not None:
        table, missing = compute_vocal_table(dataset, cands, Path(data_root), vad_threshold)
        if missing:
            report.notes.append(f"{len(missing)} tracks have no audio under {data_root}, e.g. {missing[0]}")
        if vocal_table is not None:
            write_vocal_table(Path(vocal_table), table, vad_threshold or _default_threshold())
        report.notes.append(f"vocal activity: VAD on audio under {data_root}")
    else:
        report.notes.append("vocal activity: skipped (metadata-only mode; offsets are every 6 s hop)")

    kept: dict[str, list[tuple[str, list[float]]]] = {}
    if table is None:
        cands = [c for c in cands if c.duration is not None and c.duration >= SEGMENT_SECONDS]
        report.add(f"at least {SEGMENT_SECONDS:g} s long", cands)
        for c in cands:
            kept.setdefault(c.artist, []).append((c.file_id, hop_offsets(c.duration or 0.0)))
    else:
        cands = [c for c in cands if c.file_id in table]
        report.add("with vocal activity", cands)
        vocal = []
        for c in cands:
            flags = table[c.file_id]
            offs = offsets_from_flags(flags, per=int(SEGMENT_SECONDS // VAD_SECONDS), vad_seconds=VAD_SECONDS)
            if track_is_vocal(flags, min_vocal_ratio) and offs:
                vocal.append(c)
                kept.setdefault(c.artist, []).append((c.file_id, offs))
        cands = vocal
        report.add(f"vocal in >= {min_vocal_ratio:.0%} of 3 s segments", cands)
    kept = {a: ts for a, ts in kept.items() if len(ts) >= min_tracks}
    final = [c for c in cands if c.artist in kept]
    report.add(f"singers with >= {min_tracks} tracks", final)
    if not kept:
        raise UserError(f"no singer has {min_tracks} tracks left after the filters; nothing to split")
    split = draw_splits(kept, seed)
    docs = published_docs(dataset, split)
    for role in ("train", "val", "test"):
        n = sum(len(v) for v in split[role].values())
        report.stages.append((f"{role} split", len(split[role]), n))
    if out is not None:
        report.files = write_published(dataset, docs, Path(out))
    return docs, report


def _default_threshold() -> float:
    from singerbench import vad

    return vad.DEFAULT_THRESHOLD
