"""Bring-your-own closed set: a manifest file of the user's real songs (the paper's closed set is private).

Accepted files (docs/datasets.md):

- CSV with a header: ``track_id, audio, singers, role`` and optional ``vocal_offsets``, ``genre``, ``language``
  (``singers`` and ``vocal_offsets`` are separated by ``;`` or spaces; ``role`` is train, val, test or cloned);
- JSON: ``{"tracks": [row, ...]}`` or a list of rows with the same fields (lists may be JSON lists);
- the reference code's closed layout ``{artist_id: {"name", "tracks": [{"path", "vocal"}], "test_track":
  {"path", "vocal", "macro_genre", "lang"}}}`` where ``tracks[0]`` is the validation track;
- a singerbench ``manifest.json``.

Relative audio paths resolve against ``data_root`` if given, else the manifest file's folder. Rows without
vocal offsets get them from the VAD (``offsets="vad"``), every 6 s hop (``"hop"``), or are an error.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import soundfile as sf

from singerbench.datasets import register_dataset
from singerbench.errors import UserError
from singerbench.manifest import MANIFEST_FORMAT, ROLES, Manifest, Track

NEEDS = "your closed set's manifest (--manifest FILE: CSV/JSON rows, or the reference closed layout) and its audio"
OFFSET_MODES = ("vad", "hop", "error")
SHOW = 5


def _split_list(value: object, what: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, int | float):
        return [str(value)]
    if not isinstance(value, str):
        raise UserError(f"{where}: {what} must be a list or a ';'-separated string, got {value!r}")
    return [v for v in re.split(r"[;\s]+", value.strip()) if v]


def _offsets(value: object, where: str) -> tuple[float, ...] | None:
    items = _split_list(value, "vocal_offsets", where)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not items:
        raise UserError(f"{where}: empty vocal segment list; give offsets or leave the field out")
    out = []
    for s in items:
        try:
            v = float(s)
        except ValueError:
            raise UserError(f"{where}: vocal offset {s!r} is not a number of seconds") from None
        if v < 0:
            raise UserError(f"{where}: vocal offset {v} is negative")
        out.append(v)
    return tuple(out)


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV or JSON manifest, as dicts (the reference closed layout is converted to rows)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest {path} does not exist")
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise UserError(f"manifest {path} is empty")
            rows = [dict(r) for r in reader]
        return rows
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"manifest {path} is neither CSV (by its .csv name) nor valid JSON: {e}") from None
    if isinstance(doc, dict) and isinstance(doc.get("tracks"), list):
        return doc["tracks"]
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) and "test_track" in v for v in doc.values()):
        return reference_rows(doc, path)
    raise UserError(
        f"manifest {path}: expected CSV rows, {{'tracks': [...]}}, a list of rows, or the reference closed "
        "layout {artist_id: {'name', 'tracks', 'test_track'}}"
    )


def reference_rows(doc: dict, path: Path) -> list[dict]:
    """The reference code's closed layout as rows: tracks[0] validation, tracks[1:] train, test_track test."""
    rows = []
    for artist, entry in doc.items():
        tracks = entry.get("tracks")
        if not isinstance(tracks, list) or len(tracks) < 2:
            raise UserError(f"{path}: artist {artist}: 'tracks' must list the validation track and >= 1 train track")
        items = [(t, "val" if i == 0 else "train") for i, t in enumerate(tracks)] + [(entry["test_track"], "test")]
        for t, role in items:
            if not isinstance(t, dict) or "path" not in t or "vocal" not in t:
                raise UserError(f"{path}: artist {artist}: every track needs 'path' and 'vocal', got {t!r}"[:200])
            rows.append(
                {
                    "track_id": str(Path(str(t["path"])).with_suffix("")),
                    "audio": t["path"],
                    "singers": [str(artist)],
                    "role": role,
                    "vocal_offsets": t["vocal"],
                    "genre": t.get("macro_genre"),
                    "language": t.get("lang"),
                    "name": entry.get("name"),
                }
            )
    return rows


def rows_to_tracks(
    rows: list[dict],
    path: Path,
    base: Path,
    *,
    default_role: str | None = None,
    offsets: str = "vad",
    check_audio: bool = True,
) -> list[Track]:
    """Validate rows and turn them into Tracks; missing audio is reported as a count with the first paths."""
    if offsets not in OFFSET_MODES:
        raise UserError(f"--offsets must be one of {', '.join(OFFSET_MODES)}, got {offsets!r}")
    if not rows:
        raise UserError(f"manifest {path} lists no tracks")
    prepared = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"manifest {path}: row #{i + 1} is not an object")
        where = f"manifest {path}, row #{i + 1}"
        audio = row.get("audio") or row.get("path")
        if not audio:
            raise UserError(f"{where}: no 'audio' path")
        tid = str(row.get("track_id") or row.get("id") or Path(str(audio)).with_suffix("")).strip()
        singers = _split_list(row.get("singers", row.get("singer")), "singers", where)
        if not singers:
            raise UserError(f"{where} (track {tid}): names no singer")
        role = str(row.get("role") or default_role or "").strip()
        if role not in ROLES:
            raise UserError(f"{where} (track {tid}): role {role!r} is not one of {', '.join(ROLES)}")
        audio_path = Path(str(audio)).expanduser()
        if not audio_path.is_absolute():
            audio_path = base / audio_path
        offs = _offsets(row.get("vocal_offsets", row.get("vocal")), f"{where} (track {tid})")
        genre = row.get("genre") or None
        lang = row.get("language") or None
        extra = {k: str(row[k]) for k in ("name", "context_singer") if row.get(k)}
        prepared.append((tid, audio_path, tuple(singers), role, offs, genre, lang, extra))
    if check_audio:
        missing = [p for _, p, *_ in prepared if not p.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:SHOW])
            raise UserError(f"{len(missing)} of {len(prepared)} audio files of {path} are missing, first: {shown}")
    tracks = []
    for tid, audio_path, singers, role, offs, genre, lang, extra in prepared:
        if offs is None:
            if offsets == "error":
                raise UserError(f"manifest {path}: track {tid} has no vocal offsets (--offsets error)")
            offs = tuple(_computed_offsets(audio_path, offsets))
            if not offs:
                raise UserError(f"track {tid} ({audio_path}): no 6 s segment with the voice active was found")
        tracks.append(Track(tid, audio_path, singers, role, offs, genre=genre, language=lang, extra=extra))
    return tracks


def _computed_offsets(path: Path, mode: str) -> list[float]:
    if mode == "hop":
        try:
            duration = sf.info(str(path)).duration
        except (sf.LibsndfileError, RuntimeError) as e:
            raise UserError(f"cannot read audio {path}: {e}") from None
        return [6.0 * i for i in range(int(duration // 6.0))]
    from singerbench.vad import vocal_offsets

    return vocal_offsets(path)


def load_manifest_file(
    manifest: Path | str, name: str, data_root: Path | str | None, offsets: str, default_role: str | None = None
) -> Manifest:
    """Read any accepted manifest file into a Manifest; singers in order of first appearance in training rows."""
    path = Path(manifest).expanduser()
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            head = None
        if isinstance(head, dict) and head.get("format") == MANIFEST_FORMAT:
            return Manifest.from_json(path)
    rows = read_rows(path)
    base = Path(data_root).expanduser() if data_root is not None else path.parent
    tracks = rows_to_tracks(rows, path, base, default_role=default_role, offsets=offsets)
    singers: list[str] = []
    for role in ("train", "val", "test", "cloned"):
        for t in tracks:
            if t.role == role:
                singers += [s for s in t.singers if s not in singers]
    return Manifest(name=name, tracks=tracks, singers=singers, root=base, extra={"manifest": str(path)})


def check_closed(m: Manifest) -> None:
    """Every singer needs at least one train, one val and one test track for the protocol."""
    roles: dict[str, set[str]] = {s: set() for s in m.singers}
    for t in m.tracks:
        for s in t.singers:
            roles[s].add(t.role)
    short = [s for s, r in roles.items() if not {"train", "val", "test"} <= r]
    if short:
        s = short[0]
        raise UserError(
            f"{len(short)} singers of the closed set lack a train, val or test track, e.g. {s} "
            f"(has {', '.join(sorted(roles[s])) or 'none'})"
        )


def status(manifest: Path | str | None = None, **_: object) -> tuple[bool, str]:
    if manifest is None:
        return False, "bring your own: needs --manifest FILE"
    if not Path(manifest).expanduser().is_file():
        return False, f"--manifest {manifest} does not exist"
    return True, f"manifest {manifest}"


@register_dataset("closed", description="your own closed set of real singers", needs=NEEDS, status=status)
def load(manifest: Path | str | None = None, data_root: Path | str | None = None, offsets: str = "vad") -> Manifest:
    """A closed set from ``manifest`` (train/val/test rows); see the module docstring for the formats."""
    if manifest is None:
        raise UserError("dataset 'closed' needs --manifest FILE (CSV or JSON; see docs/datasets.md)")
    m = load_manifest_file(manifest, "closed", data_root, offsets)
    if m.by_role("cloned"):
        raise UserError(f"manifest {manifest} has cloned rows; use --dataset cloned --manifest ... --reference ...")
    check_closed(m)
    return m
