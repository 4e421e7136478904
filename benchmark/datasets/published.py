"""Reading the paper's published singer splits (``splits.zip`` of deezer/real-cloned-singer-id) into a Manifest.

The FMA and MTG-Jamendo adapters share everything but the JSON shape of one artist's entry and the mapping
of a ``file_id`` to an audio path, so both live here. The layout, exactly as the reference code reads it:

- FMA ``fma_train_set.json``: ``{artist_id: {"track": [{"file_id": "000123.mp3", "vocal_segs": [...]}, ...]}}``;
  ``fma_val_set.json`` / ``fma_test_set.json``: ``{artist_id: {"track": {"file_id": ..., "vocal_segs": [...]}}}``.
- MTG ``mtg_train_set.json``: ``{artist_id: [{"file_id": "82/382.mp3", "vocal_segs": [...]}, ...]}``;
  ``mtg_val_set.json`` / ``mtg_test_set.json``: ``{artist_id: {"file_id": ..., "vocal_segs": [...]}}``.

The class index is the key order of the train file. The release zip holds them as ``splits/FMA/...`` and
``splits/mtg-jamendo-dataset/...``; any folder depth is accepted.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from singerbench.errors import UserError
from singerbench.manifest import Manifest, Track

log = logging.getLogger("singerbench.datasets")

ROLES = ("train", "val", "test")
#: The default minimum of training tracks per singer: 1, the reference's rule (its code keeps every artist of
#: the split files; the protocol needs one training, one validation and one test track). A user who wants a
#: stricter floor passes ``--min-train-tracks N`` (``-D min_train_tracks=N``).
MIN_TRAIN_TRACKS = 1
RELEASES_URL = "https://github.com/deezer/real-cloned-singer-id/releases"
#: How many missing paths an error message names.
SHOW_PATHS = 5


@dataclass(frozen=True)
class Entry:
    """One track of one artist in one split file."""

    artist: str
    file_id: str
    vocal_segs: tuple[float, ...]
    role: str


def split_file_names(prefix: str) -> dict[str, str]:
    """``{"train": "mtg_train_set.json", ...}`` for a dataset prefix (``fma`` or ``mtg``)."""
    return {role: f"{prefix}_{role}_set.json" for role in ROLES}


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" for p in parts) or PurePosixPath(name).name.startswith("._")


def _pick(candidates: list[str], name: str, where: str) -> str | None:
    if not candidates:
        return None
    if len(candidates) > 1:
        shown = ", ".join(sorted(candidates)[:3])
        raise UserError(f"{where} holds {len(candidates)} files named {name} ({shown}); keep one")
    return candidates[0]


def read_split_docs(prefix: str, splits: Path) -> tuple[dict[str, object], str]:
    """Load the three JSON documents of ``prefix`` from a folder or a zip; returns (docs by role, source)."""
    splits = Path(splits).expanduser()
    names = split_file_names(prefix)
    docs: dict[str, object] = {}
    if splits.is_file():
        if not zipfile.is_zipfile(splits):
            raise UserError(f"--splits {splits} is neither a folder nor a zip file")
        with zipfile.ZipFile(splits) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/") and not _is_junk(m)]
            for role, name in names.items():
                member = _pick([m for m in members if PurePosixPath(m).name == name], name, str(splits))
                if member is None:
                    raise UserError(f"{splits} holds no {name}; is it the {prefix.upper()} part of splits.zip?")
                docs[role] = _parse_json(zf.read(member), f"{splits}:{member}")
    elif splits.is_dir():
        for role, name in names.items():
            direct = splits / name
            if direct.is_file():
                found: Path | None = direct
            else:
                hits = [str(p) for p in splits.rglob(name) if not _is_junk(p.as_posix())]
                pick = _pick(hits, name, str(splits))
                found = Path(pick) if pick else None
            if found is None:
                raise UserError(
                    f"{splits} holds no {name}; pass --splits with the folder or the splits.zip from {RELEASES_URL}"
                )
            docs[role] = _parse_json(found.read_bytes(), str(found))
    else:
        raise UserError(f"--splits {splits} does not exist")
    return docs, str(splits)


def _parse_json(data: bytes, where: str) -> object:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"split file {where} is not valid JSON: {e}") from None


def default_splits(prefix: str, data_root: Path | None) -> Path:
    """Where to look when ``--splits`` is not given: DATA_ROOT/splits.zip, DATA_ROOT/splits, DATA_ROOT, package data."""
    train_name = split_file_names(prefix)["train"]
    candidates: list[Path] = []
    if data_root is not None:
        root = Path(data_root).expanduser()
        candidates += [root / "splits.zip", root / "splits", root]
    try:
        candidates.append(Path(str(resources.files("singerbench.splits"))))
    except ModuleNotFoundError:  # pragma: no cover - package data always importable when installed
        pass
    for c in candidates:
        if c.is_file() and zipfile.is_zipfile(c):
            with zipfile.ZipFile(c) as zf:
                if any(PurePosixPath(m).name == train_name for m in zf.namelist() if not _is_junk(m)):
                    return c
        elif c.is_dir():
            if (c / train_name).is_file() or any((c / sub / train_name).is_file() for sub in _subdirs(prefix)):
                return c
            if c.name == "splits" and any(c.rglob(train_name)):
                return c
    raise UserError(
        f"the published {prefix.upper()} split files ({train_name}, ...) were not found; download splits.zip "
        f"from {RELEASES_URL} and pass --splits PATH (the zip itself or its unpacked folder)"
    )


def _subdirs(prefix: str) -> tuple[str, ...]:
    return ("splits/FMA", "FMA") if prefix == "fma" else ("splits/mtg-jamendo-dataset", "mtg-jamendo-dataset")


def _as_track(obj: object, where: str) -> tuple[str, tuple[float, ...]]:
    if not isinstance(obj, dict) or "file_id" not in obj or "vocal_segs" not in obj:
        raise UserError(f"{where}: expected an object with 'file_id' and 'vocal_segs', got {_show(obj)}")
    file_id, segs = obj["file_id"], obj["vocal_segs"]
    if not isinstance(file_id, str) or not file_id:
        raise UserError(f"{where}: 'file_id' must be a non-empty string, got {_show(file_id)}")
    if not isinstance(segs, list):
        raise UserError(f"{where} ({file_id}): 'vocal_segs' must be a list of offsets in seconds")
    if not segs:
        raise UserError(f"{where} ({file_id}): empty vocal segment list; every track needs at least one offset")
    out = []
    for s in segs:
        if isinstance(s, bool) or not isinstance(s, int | float) or s < 0:
            raise UserError(f"{where} ({file_id}): vocal offset {s!r} is not a non-negative number of seconds")
        out.append(float(s))
    return file_id, tuple(out)


def _show(obj: object) -> str:
    text = json.dumps(obj) if not isinstance(obj, bytes) else repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_entries(prefix: str, docs: dict[str, object], source: str) -> tuple[list[str], list[Entry]]:
    """Validate the published shape and flatten it; returns (artists in train-file order, entries)."""
    names = split_file_names(prefix)
    for role, doc in docs.items():
        if not isinstance(doc, dict) or not doc:
            raise UserError(f"split file {names[role]} in {source} must be a non-empty object keyed by artist id")
    artists = [str(a) for a in docs["train"]]  # type: ignore[union-attr]
    entries: list[Entry] = []
    for role in ROLES:
        doc = docs[role]
        assert isinstance(doc, dict)
        for artist, value in doc.items():
            where = f"{names[role]}, artist {artist}"
            if prefix == "fma":
                if not isinstance(value, dict) or "track" not in value:
                    want = '{"track": [...]}' if role == "train" else '{"track": {...}}'
                    raise UserError(f"{where}: expected {want} (the published FMA layout), got {_show(value)}")
                value = value["track"]
            if role == "train":
                if not isinstance(value, list) or not value:
                    raise UserError(f"{where}: expected a non-empty list of tracks, got {_show(value)}")
                items = value
            else:
                if not isinstance(value, dict):
                    raise UserError(f"{where}: expected one track object, got {_show(value)}")
                items = [value]
            for i, item in enumerate(items):
                file_id, segs = _as_track(item, f"{where}, track #{i}" if role == "train" else where)
                entries.append(Entry(str(artist), file_id, segs, role))
    return artists, entries


def manifest_from_entries(
    name: str,
    artists: list[str],
    entries: list[Entry],
    *,
    audio_path: Callable[[str], Path],
    track_id: Callable[[str], str],
    audio_root: Path,
    drop_small: bool,
    min_train_tracks: int,
    source: str,
    description: str,
) -> Manifest:
    """Check artists, roles and audio; drop what ``drop_small`` allows; build the Manifest."""
    if min_train_tracks < 1:
        raise UserError(f"--min-train-tracks must be at least 1, got {min_train_tracks}")
    known = set(artists)
    for e in entries:
        if e.artist not in known:
            raise UserError(
                f"artist {e.artist} is in the {e.role} split file but not in the train file; "
                "every artist must appear in all three files"
            )
    seen: dict[str, Entry] = {}
    for e in entries:
        tid = track_id(e.file_id)
        if tid in seen:
            other = seen[tid]
            raise UserError(
                f"track {e.file_id} appears twice (artist {other.artist} {other.role}, artist {e.artist} {e.role})"
            )
        seen[tid] = e

    missing = [e for e in entries if not audio_path(e.file_id).is_file()]
    if missing and len(missing) == len(entries):
        example = audio_path(entries[0].file_id)
        raise UserError(
            f"none of the {len(entries)} audio files was found under {audio_root} (e.g. {example}); "
            "check --data-root"
        )
    if missing and not drop_small:
        shown = ", ".join(str(audio_path(e.file_id)) for e in missing[:SHOW_PATHS])
        raise UserError(
            f"{len(missing)} of {len(entries)} audio files are missing under {audio_root}, first: {shown} "
            "(pass --drop-small to drop those tracks and the singers left below the minimum)"
        )
    missing_ids = {id(e) for e in missing}
    present = [e for e in entries if id(e) not in missing_ids]

    counts = {a: dict.fromkeys(ROLES, 0) for a in artists}
    for e in present:
        counts[e.artist][e.role] += 1
    small = [
        a
        for a in artists
        if counts[a]["train"] < min_train_tracks or counts[a]["val"] < 1 or counts[a]["test"] < 1
    ]
    if small and not drop_small:
        a = small[0]
        c = counts[a]
        raise UserError(
            f"{len(small)} singers fall below the minimum ({min_train_tracks} train, 1 val, 1 test track), e.g. "
            f"artist {a} with {c['train']} train, {c['val']} val, {c['test']} test "
            "(pass --drop-small to drop them)"
        )
    dropped = set(small)
    kept_artists = [a for a in artists if a not in dropped]
    if not kept_artists:
        raise UserError(f"no singer of {name} is left after dropping those below the minimum; check --data-root")
    if missing or dropped:
        log.warning(
            "%s: dropped %d tracks with missing audio and %d of %d singers below the minimum "
            "(%d train, 1 val, 1 test)",
            name,
            len(missing),
            len(dropped),
            len(artists),
            min_train_tracks,
        )
    tracks = [
        Track(
            id=track_id(e.file_id),
            audio=audio_path(e.file_id),
            singers=(e.artist,),
            role=e.role,
            vocal_offsets=e.vocal_segs,
            extra={"file_id": e.file_id},
        )
        for e in present
        if e.artist not in dropped
    ]
    return Manifest(
        name=name,
        tracks=tracks,
        singers=kept_artists,
        description=description,
        root=audio_root,
        extra={
            "splits": source,
            "dropped_missing_audio": len(missing),
            "dropped_singers": len(dropped),
            "missing_examples": [str(audio_path(e.file_id)) for e in missing[:SHOW_PATHS]],
        },
    )


@dataclass(frozen=True)
class PublishedLayout:
    """What one published dataset adds to the shared reader: its name (the split files' prefix) and where its
    audio files lie under ``--data-root``."""

    name: str
    title: str
    needs: str
    description: str
    audio_subfolder: str | None = None  # FMA full unpacks to fma_full/; DATA_ROOT may also be that folder
    shard_chars: int = 0  # FMA: ``000123.mp3`` lies in the folder named by its first 3 characters

    def audio_root(self, data_root: Path) -> Path:
        if self.audio_subfolder and (data_root / self.audio_subfolder).is_dir():
            return data_root / self.audio_subfolder
        return data_root

    def audio_path(self, root: Path, file_id: str) -> Path:
        """FMA ``000123.mp3`` → ``000/000123.mp3``; MTG's PATH column (``82/382.mp3``) is used as it is."""
        return root / file_id[: self.shard_chars] / file_id if self.shard_chars else root / file_id


#: Published layouts by dataset name, filled by :func:`register_published`.
LAYOUTS: dict[str, PublishedLayout] = {}


def _track_id(file_id: str) -> str:
    return Path(file_id).stem


def load_published(
    layout: PublishedLayout,
    *,
    data_root: Path | str | None,
    splits: Path | str | None,
    drop_small: bool,
    min_train_tracks: int,
) -> Manifest:
    """The whole load: find and read the split files, validate, map to audio, build the Manifest."""
    name = prefix = layout.name
    if data_root is None:  # name every missing option at once (the split files are looked up under it)
        missing = ["--data-root DIR (the folder that holds its audio)"]
        if splits is None:
            missing.append(f"--splits PATH (the paper's splits.zip or its unpacked folder, from {RELEASES_URL})")
        raise UserError(f"dataset {name!r} needs " + " and ".join(missing))
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder")
    source_path = Path(splits).expanduser() if splits is not None else default_splits(prefix, root)
    docs, source = read_split_docs(prefix, source_path)
    artists, entries = parse_entries(prefix, docs, source)
    aroot = layout.audio_root(root)
    return manifest_from_entries(
        name,
        artists,
        entries,
        audio_path=lambda fid: layout.audio_path(aroot, fid),
        track_id=_track_id,
        audio_root=aroot,
        drop_small=drop_small,
        min_train_tracks=min_train_tracks,
        source=source,
        description=layout.description,
    )


def published_status(prefix: str, data_root: Path | str | None, splits: Path | str | None) -> tuple[bool, str]:
    """Cheap readiness check for ``singerbench datasets``: are split files and an audio root at hand?"""
    try:
        where = Path(splits).expanduser() if splits is not None else default_splits(prefix, data_root)
    except UserError as e:
        return False, str(e).split(";")[0]
    if data_root is None:
        return False, f"split files found ({where}); needs --data-root with the audio"
    if not Path(data_root).expanduser().is_dir():
        return False, f"--data-root {data_root} is not a folder"
    return True, f"split files {where}, audio under {data_root}"


def register_published(layout: PublishedLayout) -> None:
    """Register ``layout.name`` as a dataset adapter reading the published split files over the user's audio."""
    from singerbench.datasets import register_dataset

    LAYOUTS[layout.name] = layout

    def status(data_root: Path | str | None = None, splits: Path | str | None = None, **_: object) -> tuple[bool, str]:
        return published_status(layout.name, data_root, splits)

    def load(
        data_root: Path | str | None = None,
        splits: Path | str | None = None,
        drop_small: bool = False,
        min_train_tracks: int = MIN_TRAIN_TRACKS,
    ) -> Manifest:
        return load_published(
            layout, data_root=data_root, splits=splits, drop_small=drop_small, min_train_tracks=min_train_tracks
        )

    load.__doc__ = f"Load the published {layout.title} splits over the audio in ``data_root`` (docs/datasets.md)."
    register_dataset(layout.name, description=f"{layout.title} singer splits of the paper (real songs)",
                     needs=layout.needs, status=status)(load)
