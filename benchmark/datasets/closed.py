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
import difflib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import soundfile as sf

from singerbench.datasets import register_dataset
from singerbench.errors import UserError
from singerbench.manifest import MANIFEST_FORMAT, ROLES, Manifest, Track

NEEDS = "your closed set's manifest (--manifest FILE: CSV/JSON rows, or the reference closed layout) and its audio"
OFFSET_MODES = ("vad", "hop", "error")
SHOW = 5
log = logging.getLogger("singerbench.datasets")


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


#: Row fields a manifest may have (``id``, ``path`` and ``singer`` are accepted spellings of the first three).
COLUMNS = ("track_id", "audio", "singers", "role", "vocal_offsets", "vocals", "instrumental", "genre", "language",
           "context_singer", "name")
ALIASES = {"id": "track_id", "path": "audio", "singer": "singers"}


def check_columns(rows: list[dict], path: Path, lenient: bool = False) -> None:
    """Unknown columns are an error naming each one and the nearest known column (``lenient``: a warning)."""
    known = set(COLUMNS) | set(ALIASES)
    seen: list[str] = []
    for row in rows:
        if isinstance(row, dict):
            seen += [str(k) for k in row if str(k) not in known and str(k) not in seen]
    if not seen:
        return
    parts = []
    for col in seen:
        near = difflib.get_close_matches(col, list(known), n=1, cutoff=0.5)
        parts.append(f"{col!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    what = f"manifest {path}: unknown column{'s' if len(seen) > 1 else ''} {', '.join(parts)}"
    if lenient:
        log.warning("%s; ignored (--lenient)", what)
        return
    raise UserError(f"{what}; known columns: {', '.join(COLUMNS)} (--lenient ignores unknown columns)")


def _resolve(value: object, base: Path) -> Path | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    p = Path(str(value).strip()).expanduser()
    return p if p.is_absolute() else base / p


def _row_to_track(row: object, base: Path, default_role: str | None) -> Track:
    """One row as a Track (offsets may still be missing); a UserError says what is wrong with the row."""
    if not isinstance(row, dict):
        raise UserError("is not an object")
    audio = row.get("audio") or row.get("path")
    if not audio:
        raise UserError("has no 'audio' path")
    tid = str(row.get("track_id") or row.get("id") or Path(str(audio)).with_suffix("")).strip()
    try:
        singers = _split_list(row.get("singers", row.get("singer")), "singers", f"track {tid}")
        if not singers:
            raise UserError(f"track {tid} names no singer")
        role = str(row.get("role") or default_role or "").strip()
        if role not in ROLES:
            raise UserError(f"track {tid}: role {role!r} is not one of {', '.join(ROLES)}")
        offs = _offsets(row.get("vocal_offsets"), f"track {tid}")
    except UserError as e:
        msg = str(e)
        raise UserError(msg if msg.startswith("track ") else f"track {tid}: {msg}") from None
    extra = {k: str(row[k]) for k in ("name", "context_singer") if row.get(k)}
    return Track(
        tid, _resolve(audio, base), tuple(singers), role, offs or (),
        vocals=_resolve(row.get("vocals"), base), instrumental=_resolve(row.get("instrumental"), base),
        genre=row.get("genre") or None, language=row.get("language") or None, extra=extra,
        offsets_from="given" if offs else "",
    )


def _problems(path: Path, problems: list[str], what: str = "rows have problems") -> UserError:
    shown = "; ".join(problems[:SHOW])
    more = f"; and {len(problems) - SHOW} more" if len(problems) > SHOW else ""
    return UserError(f"manifest {path}: {len(problems)} {what}: {shown}{more}")


def rows_to_tracks(
    rows: list[dict],
    path: Path,
    base: Path,
    *,
    default_role: str | None = None,
    offsets: str = "vad",
    check_audio: bool = True,
    lenient: bool = False,
) -> list[Track]:
    """Validate rows and turn them into Tracks.

    Every row problem is collected into one message (the first few rows, and how many more); missing audio
    or stem files likewise. Rows without offsets get them from ``offsets`` (the VAD runs on the row's vocal
    stem when it has one, else on the mixture).
    """
    if offsets not in OFFSET_MODES:
        raise UserError(f"--offsets must be one of {', '.join(OFFSET_MODES)}, got {offsets!r}")
    if not rows:
        raise UserError(f"manifest {path} lists no tracks")
    check_columns(rows, path, lenient)
    tracks, problems = [], []
    for i, row in enumerate(rows):
        try:
            tracks.append(_row_to_track(row, base, default_role))
        except UserError as e:
            problems.append(f"row #{i + 1} {e}" if str(e).startswith(("is ", "has ")) else f"row #{i + 1} ({e})")
    if problems:
        raise _problems(path, problems)
    if check_audio:
        files = [p for t in tracks for p in (t.audio, t.vocals, t.instrumental) if p is not None]
        missing = [p for p in files if not p.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:SHOW])
            raise UserError(f"{len(missing)} of {len(files)} audio files of {path} are missing, first: {shown}")
    if offsets == "error":
        lacking = [t.id for t in tracks if not t.vocal_offsets]
        if lacking:
            raise _problems(path, [f"track {tid} has no vocal_offsets" for tid in lacking],
                            "rows lack vocal offsets (--offsets error; give a vocal_offsets column, or use "
                            "--offsets vad or --offsets hop)")
    out, empty = [], []
    for t in tracks:
        if t.vocal_offsets:
            out.append(t)
            continue
        offs, source, why = _computed_offsets(t, offsets)
        if not offs:
            empty.append(f"{t.id} ({t.vocals or t.audio}{': ' + why if why else ''})")
        out.append(replace(t, vocal_offsets=tuple(offs), offsets_from=source))
    if empty:
        raise _problems(
            path, empty,
            "tracks with no 6 s segment where the vocal detector hears the voice, or vocal in too few of their "
            "3 s segments to count as sung (use --offsets hop to take every 6 s, or give a vocal_offsets column "
            "for these rows)",
        )
    return out


def _computed_offsets(track: Track, mode: str) -> tuple[Sequence[float], str, str]:
    """Offsets for a row without them, where they came from (``hop`` or ``vad@<threshold>,share>=<share>``) and,
    when there are none, why not."""
    if mode == "hop":
        try:
            duration = sf.info(str(track.audio)).duration
        except (sf.LibsndfileError, RuntimeError) as e:
            raise UserError(f"cannot read audio {track.audio}: {e}") from None
        offs = [6.0 * i for i in range(int(duration // 6.0))]
        return offs, "hop", "" if offs else "shorter than 6 s"
    from singerbench.vad import default_offsets

    return default_offsets(track.vocals or track.audio)


def load_manifest_file(
    manifest: Path | str,
    name: str,
    data_root: Path | str | None,
    offsets: str,
    default_role: str | None = None,
    lenient: bool = False,
) -> Manifest:
    """Read any accepted manifest file into a Manifest; singers in order of first appearance in training rows.

    The user's data is never labelled generated, even when it comes as a singerbench ``manifest.json``."""
    path = Path(manifest).expanduser()
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            head = None
        if isinstance(head, dict) and head.get("format") == MANIFEST_FORMAT:
            m = Manifest.from_json(path)
            m.generated = False
            return m
    rows = read_rows(path)
    base = Path(data_root).expanduser() if data_root is not None else path.parent
    tracks = rows_to_tracks(rows, path, base, default_role=default_role, offsets=offsets, lenient=lenient)
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
def load(
    manifest: Path | str | None = None,
    data_root: Path | str | None = None,
    offsets: str = "vad",
    lenient: bool = False,  # ``-D lenient=true`` arrives typed (datasets._typed)
) -> Manifest:
    """A closed set from ``manifest`` (train/val/test rows); see the module docstring for the formats."""
    if manifest is None:
        raise UserError("dataset 'closed' needs --manifest FILE (CSV or JSON; see docs/datasets.md)")
    m = load_manifest_file(manifest, "closed", data_root, offsets, lenient=lenient)
    if m.by_role("cloned"):
        raise UserError(f"manifest {manifest} has cloned rows; use --dataset cloned --manifest ... --reference ...")
    check_closed(m)
    return m
