"""Any Hugging Face Hub audio dataset with a singer column: ``--dataset hf://owner/name[@revision]``.

The repository is fetched by :func:`singerbench.hub.fetch_dataset` (``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and the
Hub cache are read at call time) and read with ``datasets`` with the audio left undecoded (``Audio(decode=False)``).
Audio stored as bytes inside parquet is written once, atomically, to ``<cache>/hf/<repo>/<sha256>.<ext>``;
the SegmentSource decodes it from there. Roles come from the dataset's splits (train / validation / test)
or are drawn with ``seed`` (one val and one test track per singer). Vocal offsets come from a column, else
every 6 s hop of the audio (``offsets="hop"``, the default), else the VAD (``offsets="vad"``).
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import soundfile as sf

from singerbench.datasets import register_dataset
from singerbench.errors import UserError
from singerbench.hub import HF_SCHEME, fetch_dataset, parse_hub_spec
from singerbench.io import atomic_write_bytes
from singerbench.manifest import Manifest, Track
from singerbench.paths import station_dir

log = logging.getLogger("singerbench.datasets")
NEEDS = "a Hub audio dataset with a singer column (pip install 'singerbench[hf]'; network or a local Hub cache)"
SPLIT_ROLES = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "test": "test"}
ROLE_MODES = ("auto", "splits", "draw")
OFFSET_MODES = ("hop", "vad")


def _open(local: Path, config: str | None, audio_column: str):
    try:
        import datasets
    except ImportError:
        raise UserError("hf:// datasets need the `datasets` package: pip install 'singerbench[hf]'") from None
    try:
        dd = datasets.load_dataset(str(local), name=config)
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as e:
        raise UserError(f"cannot read the dataset files in {local}: {str(e).splitlines()[0]}") from None
    out = {}
    for split, ds in dd.items():
        if audio_column not in ds.column_names:
            raise UserError(
                f"dataset split {split!r} has no audio column {audio_column!r}; columns: {', '.join(ds.column_names)} "
                "(choose one with --audio-column)"
            )
        if isinstance(ds.features[audio_column], datasets.Audio):
            ds = ds.cast_column(audio_column, datasets.Audio(decode=False))
        out[split] = ds
    return out


def _materialise(value: object, local: Path, cache: Path, where: str) -> Path:
    """An audio cell (``{"bytes", "path"}`` or a path string) to a file on disk."""
    if isinstance(value, str):
        value = {"path": value, "bytes": None}
    if not isinstance(value, dict):
        raise UserError(f"{where}: audio cell is neither a file path nor {{'bytes', 'path'}}: {type(value).__name__}")
    data, name = value.get("bytes"), value.get("path")
    if data:
        suffix = Path(name).suffix if name and Path(name).suffix else ".audio"
        target = cache / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if not target.is_file():
            atomic_write_bytes(target, data)
        return target
    if name:
        p = Path(name)
        for cand in (p, local / p):
            if cand.is_file():
                return cand
        raise UserError(f"{where}: audio file {name} is neither in the snapshot nor on disk")
    raise UserError(f"{where}: empty audio cell")


def _hop_offsets(path: Path, where: str) -> tuple[float, ...]:
    try:
        duration = sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UserError(f"{where}: unreadable audio ({e})") from None
    return tuple(6.0 * i for i in range(int(duration // 6.0)))


def status(repo: str | None = None, **_: object) -> tuple[bool, str]:
    try:
        import datasets  # noqa: F401
    except ImportError:
        return False, "needs the `datasets` package: pip install 'singerbench[hf]'"
    return True, "give --dataset hf://owner/name[@revision]"


@register_dataset("hf", description="any Hub audio dataset with a singer column", needs=NEEDS, status=status)
def load(
    repo: str | None = None,
    singer_column: str = "singer",
    audio_column: str = "audio",
    id_column: str | None = None,
    offsets_column: str | None = None,
    genre_column: str | None = None,
    language_column: str | None = None,
    config: str | None = None,
    roles: str = "auto",
    offsets: str = "hop",
    seed: int = 0,
    cache_dir: Path | str | None = None,
) -> Manifest:
    """Benchmark a Hub dataset; ``repo`` is ``owner/name[@revision]`` (given by ``hf://`` in ``--dataset``)."""
    if repo is None:
        raise UserError("dataset 'hf' needs a repository: --dataset hf://owner/name[@revision]")
    if roles not in ROLE_MODES:
        raise UserError(f"--roles must be one of {', '.join(ROLE_MODES)}, got {roles!r}")
    if offsets not in OFFSET_MODES:
        raise UserError(f"--offsets must be one of {', '.join(OFFSET_MODES)} for hf:// datasets, got {offsets!r}")
    repo_id, revision = parse_hub_spec(HF_SCHEME + repo)
    local = fetch_dataset(repo_id, revision)
    splits = _open(local, config, audio_column)
    mapped = {s: SPLIT_ROLES.get(s.lower()) for s in splits}
    have = set(mapped.values())
    use_splits = roles == "splits" or (roles == "auto" and {"train", "val", "test"} <= have)
    if roles == "splits" and not {"train", "test"} <= have:
        raise UserError(f"hf://{repo}: splits {', '.join(splits)} lack train and test; use --roles draw")
    cache = station_dir("hf", cache_dir) / repo_id.replace("/", "--")
    rows: list[tuple[str, str, dict]] = []  # (split, row id, row)
    for split, ds in splits.items():
        if use_splits and mapped[split] is None:
            log.warning("hf://%s: split %r is not train/validation/test; left out", repo, split)
            continue
        for col in (singer_column, id_column, offsets_column, genre_column, language_column):
            if col is not None and col not in ds.column_names:
                raise UserError(
                    f"hf://{repo}: split {split!r} has no column {col!r}; columns: {', '.join(ds.column_names)}"
                )
        for i, row in enumerate(ds):
            rid = str(row[id_column]) if id_column else f"{split}-{i:06d}"
            rows.append((split, rid, row))
    if not rows:
        raise UserError(f"hf://{repo} has no rows")

    role_of: dict[str, str] = {}
    if use_splits:
        for split, rid, _ in rows:
            role_of[rid] = mapped[split] or "train"
    else:
        by_singer: dict[str, list[str]] = {}
        for _, rid, row in rows:
            by_singer.setdefault(str(row[singer_column]), []).append(rid)
        rng = random.Random(seed)
        small = 0
        for singer in sorted(by_singer):
            ids = sorted(by_singer[singer])
            if len(ids) < 3:
                small += 1
                continue
            val, test = rng.sample(ids, 2)
            for rid in ids:
                role_of[rid] = "val" if rid == val else "test" if rid == test else "train"
        if small:
            log.warning("hf://%s: dropped %d singers with fewer than 3 tracks (1 train, 1 val, 1 test)", repo, small)

    tracks = []
    for split, rid, row in rows:
        if rid not in role_of:
            continue
        where = f"hf://{repo} {split} row {rid}"
        audio = _materialise(row[audio_column], local, cache, where)
        if offsets_column:
            val = row[offsets_column]
            if not isinstance(val, list | tuple) or not val:
                raise UserError(f"{where}: {offsets_column!r} must be a non-empty list of offsets in seconds")
            offs, source = tuple(float(v) for v in val), "given"
        elif offsets == "vad":
            from singerbench.vad import default_offsets

            offs, source, why = default_offsets(audio)
            if not offs:
                raise UserError(f"{where}: no 6 s vocal segment ({why}); use --offsets hop or "
                                f"-D offsets_column=COLUMN")
        else:
            offs, source = _hop_offsets(audio, where), "hop"
        if not offs:
            raise UserError(f"{where}: no 6 s vocal segment (audio shorter than 6 s)")
        singer = str(row[singer_column])
        tracks.append(
            Track(
                id=rid,
                audio=audio,
                singers=(singer,),
                role=role_of[rid],
                vocal_offsets=offs,
                genre=str(row[genre_column]) if genre_column and row[genre_column] is not None else None,
                language=str(row[language_column]) if language_column and row[language_column] is not None else None,
                extra={"split": split},
                offsets_from=source,
            )
        )
    singers: list[str] = []
    for role in ("train", "val", "test"):
        for t in tracks:
            if t.role == role and t.singers[0] not in singers:
                singers.append(t.singers[0])
    return Manifest(
        name=f"hf://{repo}",
        tracks=tracks,
        singers=singers,
        description=f"Hub dataset {repo_id}" + (f" at {revision}" if revision else ""),
        root=cache,
        extra={"repo": repo_id, "revision": revision, "snapshot": str(local), "roles": "splits" if use_splits else "drawn"},
    )
