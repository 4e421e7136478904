"""EmbeddingStore: every segment embedding computed once, kept on disk, resumable, served as one array.

Layout (documented in ``docs/store.md``)::

    <root>/
      digests.json                 memo: audio file (path, size, mtime_ns, inode) -> sha256 of its bytes
      <model key>/                 one folder per (plugin name, weights id, audio config)
        meta.json                  what the folder holds (plugin, weights id, audio config, dim)
        shards/<name>.npy          float32 (n, D) embeddings, append-only, written atomically
        shards/<name>.json         the shard's index: segment keys, track ids, offsets (written after it)

A shard counts only once its index exists, and both are renamed into place, so readers (and a run killed
at any moment) never see half a shard. A shard that fails to load anyway (a truncated or overwritten file,
an index that does not match its array) is **quarantined**: moved to ``<model key>/quarantine/``, named in
one log line, and its segments are computed again. New embeddings are written every ``flush_every``
segments or ``FLUSH_SECONDS`` seconds, whichever comes first, so a crash or a full disk loses at most one
batch; a full or read-only disk ends in one :class:`~singerbench.errors.UserError` line. Two runs of one
model on one dataset take turns (an ``flock`` on ``<model key>/.lock-<dataset>``): the second waits, then
finds the first one's embeddings and computes nothing twice. A segment key hashes the dataset name, the track id, where the stem
comes from (``mixture``, ``dataset`` or the separator's identity), the sha256 of the bytes of the file that
determines the audio (the stem, or the mixture a separator works on) and the offset in milliseconds.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from singerbench.audio import file_digest, file_stat_key, is_racy
from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.io import atomic_write, atomic_write_text
from singerbench.manifest import Manifest, Track
from singerbench.progress import Progress
from singerbench.segments import SegmentSource

STORE_FORMAT = "singerbench-embeddings/1"
#: new embeddings are written at least this often (seconds), besides every ``flush_every`` segments
FLUSH_SECONDS = 120.0
log = logging.getLogger("singerbench.store")
#: OSError numbers that mean "this disk cannot take the write": said in one line, not a traceback
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def disk_error(e: OSError, what: str, kept: str = "") -> UserError:
    """One line for a write the disk refused (full, read-only, no permission), saying what was kept."""
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
              errno.EROFS: "the file system is read-only", errno.EFBIG: "the file size limit is reached"}.get(
        e.errno, "permission denied" if e.errno in (errno.EACCES, errno.EPERM) else os.strerror(e.errno or 0))
    where = f" ({e.filename})" if e.filename else ""
    return UserError(f"cannot write {what}{where}: {reason}. {kept}".rstrip())
_GATHER_CHUNK = 65536  # rows copied at a time when a table is gathered from several shards


@dataclass
class EmbeddingTable:
    """Embeddings of a set of segments: row i is segment (track_ids[i], offsets[i])."""

    track_ids: list[str]
    offsets: np.ndarray
    vectors: np.ndarray
    _rows: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.track_ids)

    def rows(self, track_id: str) -> np.ndarray:
        """Row indices of ``track_id``, in the order of its offsets."""
        if self._rows is None:
            groups: dict[str, list[int]] = {}
            for i, t in enumerate(self.track_ids):
                groups.setdefault(t, []).append(i)
            self._rows = {
                t: np.asarray(sorted(ix, key=lambda i: self.offsets[i]), dtype=np.int64) for t, ix in groups.items()
            }
        if track_id not in self._rows:
            raise KeyError(f"no embeddings of track {track_id!r}")
        return self._rows[track_id]

    def for_track(self, track_id: str) -> np.ndarray:
        """``(n, D)`` embeddings of one track, in its offset order (a view when its rows are consecutive)."""
        rows = self.rows(track_id)
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
            return self.vectors[rows[0] : rows[-1] + 1]  # no copy: a memory-mapped table stays on disk
        return self.vectors[rows]


def _hash(obj: object, n: int = 32) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:n]


def model_identity(embedder: Embedder) -> dict:
    """What selects a store folder: the plugin's name and weights id (``Embedder.identity``) and audio config.

    The plugin's ``config()`` is not part of the key: a config that changes the outputs changes ``weights_id``
    (a weights file hash, or the architecture hash of a random initialisation).
    """
    who = embedder.identity()
    return {"plugin": who["name"], "weights_id": who["weights_id"], "audio_config": embedder.audio_config()}


class _Digests:
    """Persistent memo of audio-file content hashes, so a fully cached run only stats files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, list] = {}
        self.changed = False
        try:
            doc = json.loads(path.read_text())
            if isinstance(doc, dict) and isinstance(doc.get("files"), dict):
                self.known = doc["files"]
        except (FileNotFoundError, json.JSONDecodeError):
            pass

    def digest(self, path: Path) -> str:
        resolved, size, mtime_ns, ino = file_stat_key(path)
        hit = self.known.get(resolved)
        if hit is not None and hit[:3] == [size, mtime_ns, ino]:
            return hit[3]
        d = file_digest(path)
        if not is_racy((resolved, size, mtime_ns, ino)):
            self.known[resolved] = [size, mtime_ns, ino, d]
            self.changed = True
        return d

    def save(self) -> None:
        if self.changed:
            try:  # merge with what a concurrent run may have written meanwhile
                other = json.loads(self.path.read_text()).get("files", {})
            except (FileNotFoundError, json.JSONDecodeError, AttributeError):
                other = {}
            merged = {**other, **self.known}
            atomic_write_text(self.path, json.dumps({"format": STORE_FORMAT, "files": merged}))
            self.changed = False


class EmbeddingStore:
    """Content-addressed, resumable, on-disk cache of segment embeddings (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.computed = 0
        self.reused = 0
        self.flushed = 0  # embeddings written to disk by the last embed() call

    # --- layout ------------------------------------------------------------------------------------------

    def model_dir(self, embedder: Embedder) -> Path:
        ident = model_identity(embedder)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ident["plugin"])[:40]
        return self.root / f"{safe}-{_hash(ident, 16)}"

    def _write_meta(self, folder: Path, embedder: Embedder) -> None:
        meta = folder / "meta.json"
        if meta.is_file():
            return
        doc = {
            "format": STORE_FORMAT,
            **model_identity(embedder),
            "embedding_dim": int(embedder.embedding_dim),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_text(meta, json.dumps(doc, indent=1) + "\n")

    @staticmethod
    def segment_key(dataset: str, track_id: str, stem_id: str, file_sha256: str, offset: float) -> str:
        """The key of one segment embedding within a model folder (32 hex chars)."""
        return _hash([dataset, track_id, stem_id, file_sha256, int(round(offset * 1000))])

    def keys(
        self,
        manifest: Manifest,
        source: SegmentSource,
        segments: Sequence[tuple[Track, float]],
        progress: bool = False,
    ) -> list[str]:
        """Segment keys in order; each track's file is hashed once (and memoised on disk)."""
        digests = _Digests(self.root / "digests.json")
        tracks = list({t.id: t for t, _ in segments}.values())
        per_track: dict[str, tuple[str, str]] = {}
        with Progress("identifying audio", len(tracks), "track", bar=progress and len(tracks) >= 50,
                      quiet_below=50) as bar:
            for track in tracks:
                per_track[track.id] = (source.stem_id(track), digests.digest(source.identity_file(track)))
                bar.update(1)
        out = []
        for track, off in segments:
            stem_id, sha = per_track[track.id]
            out.append(self.segment_key(manifest.name, track.id, stem_id, sha, off))
        try:
            digests.save()
        except OSError:
            pass  # only a memo
        return out

    # --- reading -----------------------------------------------------------------------------------------

    def index(self, folder: Path, dim: int | None = None) -> dict[str, tuple[Path, int]]:
        """key -> (shard file, row) over every complete shard in ``folder`` (the oldest shard wins).

        With ``dim``, each shard's array header is checked too; a shard that fails is quarantined.
        """
        shard_dir = folder / "shards"
        for _ in range(5):  # a concurrent compaction may remove a listed shard: list again
            try:
                return self._index_once(shard_dir, dim)
            except FileNotFoundError:
                time.sleep(0.05)
        return self._index_once(shard_dir, dim)

    @classmethod
    def _index_once(cls, shard_dir: Path, dim: int | None) -> dict[str, tuple[Path, int]]:
        index: dict[str, tuple[Path, int]] = {}
        if not shard_dir.is_dir():
            return index
        for meta in sorted(shard_dir.glob("*.json")):
            npy = meta.with_suffix(".npy")
            try:
                keys = cls._shard_keys(meta, npy, dim)
            except FileNotFoundError:
                if meta.exists():  # the index is there but its array is gone: damage, not a compaction
                    cls._quarantine(meta, "its array file is missing")
                    continue
                raise
            except ValueError as e:
                cls._quarantine(meta, str(e))
                continue
            for row, key in enumerate(keys):
                index.setdefault(key, (npy, row))
        return index

    @staticmethod
    def _shard_keys(meta: Path, npy: Path, dim: int | None) -> list[str]:
        """The keys of a shard, after checking its index parses and its array header fits (ValueError if not)."""
        try:
            doc = json.loads(meta.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"its index is not JSON ({e})") from None
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("its index has no list of keys")
        if dim is not None:
            try:
                arr = np.load(npy, mmap_mode="r")
            except FileNotFoundError:
                raise
            except (ValueError, OSError, EOFError) as e:  # truncated, random bytes, not an .npy
                raise ValueError(f"its array cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
            if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] < len(keys) or arr.dtype != np.float32:
                raise ValueError(f"its array has shape {arr.shape} {arr.dtype}, expected ({len(keys)}, {dim}) float32")
        return keys

    @staticmethod
    def _quarantine(meta: Path, why: str) -> None:
        """Move a damaged shard (index and array) to ``<model>/quarantine/``; its segments are computed again."""
        target = meta.parent.parent / "quarantine"
        moved = []
        try:
            target.mkdir(exist_ok=True)
            for f in (meta, meta.with_suffix(".npy")):
                if f.exists():
                    os.replace(f, target / f.name)
                    moved.append(f.name)
        except OSError as e:
            raise UserError(
                f"embedding shard {meta.with_suffix('')} is damaged ({why}) and cannot be moved aside ({e}); "
                f"delete {meta} and {meta.with_suffix('.npy')} and run again"
            ) from None
        if moved:
            log.warning("embedding shard %s is damaged (%s): moved to %s; its segments will be computed again",
                        meta.with_suffix(""), why, target)

    @staticmethod
    def _gather(index: dict[str, tuple[Path, int]], keys: Sequence[str], dim: int) -> np.ndarray:
        """The rows of ``keys`` as one (n, D) array, read through memory maps.

        When one shard holds all of them, consecutively (a compacted store), the result *is* the read-only
        memory map: the table stays in the page cache instead of being copied into the process. Otherwise the
        rows are copied shard by shard, in chunks, so no second full-size temporary is made.
        """
        by_shard: dict[Path, tuple[list[int], list[int]]] = {}
        for i, k in enumerate(keys):
            shard, row = index[k]
            dst, src = by_shard.setdefault(shard, ([], []))
            dst.append(i)
            src.append(row)

        def load(shard: Path) -> np.ndarray:
            try:
                arr = np.load(shard, mmap_mode="r")
            except (ValueError, OSError, EOFError) as e:
                raise UserError(
                    f"embedding shard {shard} cannot be read ({e}); delete {shard} and {shard.with_suffix('.json')} "
                    "and run again (its segments are computed anew)"
                ) from None
            if arr.ndim != 2 or arr.shape[1] != dim or arr.dtype != np.float32:
                raise UserError(
                    f"embedding shard {shard} has shape {arr.shape} {arr.dtype}, expected (n, {dim}) float32; "
                    f"delete {shard} and {shard.with_suffix('.json')} and run again"
                )
            return arr

        if len(by_shard) == 1:
            shard, (_, src) = next(iter(by_shard.items()))
            if src[-1] - src[0] == len(src) - 1 and bool(np.all(np.diff(src) == 1)):
                return load(shard)[src[0] : src[-1] + 1]
        out = np.empty((len(keys), dim), dtype=np.float32)
        for shard, (dst, src) in by_shard.items():
            arr = load(shard)
            for i in range(0, len(dst), _GATHER_CHUNK):
                out[dst[i : i + _GATHER_CHUNK]] = arr[src[i : i + _GATHER_CHUNK]]
        return out

    # --- writing -----------------------------------------------------------------------------------------

    #: the function that writes a shard's array into an open file (a seam for fault-injection tests)
    write_array = staticmethod(lambda f, arr: _write_npy(f, arr))

    def _flush(self, folder: Path, keys: list[str], items: list[tuple[Track, float]], vectors: list[np.ndarray]) -> None:
        if keys:
            try:
                self._write_shard(
                    folder / "shards", keys, [t.id for t, _ in items], [o for _, o in items], np.concatenate(vectors)
                )
            except OSError as e:
                if e.errno not in DISK_ERRNOS:
                    raise
                raise disk_error(
                    e, f"{len(keys)} new embeddings to the cache",
                    f"Embeddings written before are kept ({self.flushed} this run); free space and run the same "
                    "command again to resume.",
                ) from None
            self.flushed += len(keys)

    def compact(self, embedder: Embedder, stale_after_s: float = 3600.0) -> int:
        """Merge a model folder's shards into one (fewer files to open); returns the shard count before.

        Also removes leftovers of killed writers (temporary files, arrays without an index) older than
        ``stale_after_s``. Safe beside readers: the merged shard is in place before the old ones go.
        """
        shard_dir = self.model_dir(embedder) / "shards"
        metas = sorted(shard_dir.glob("*.json")) if shard_dir.is_dir() else []
        if len(metas) >= 2:
            docs = [json.loads(m.read_text()) for m in metas]
            index: dict[str, tuple[Path, int]] = {}
            origin: dict[str, tuple[str, float]] = {}
            for meta, doc in zip(metas, docs, strict=True):
                for row, (k, t, o) in enumerate(zip(doc["keys"], doc["tracks"], doc["offsets"], strict=True)):
                    if k not in index:
                        index[k] = (meta.with_suffix(".npy"), row)
                        origin[k] = (t, o)
            keys = list(index)
            vectors = self._gather(index, keys, int(embedder.embedding_dim))
            self._write_shard(
                shard_dir, keys, [origin[k][0] for k in keys], [origin[k][1] for k in keys], vectors
            )
            for meta in metas:  # index first, then data: a shard without index is simply ignored
                meta.unlink(missing_ok=True)
                meta.with_suffix(".npy").unlink(missing_ok=True)
        if shard_dir.is_dir():
            cutoff = time.time() - stale_after_s
            for f in list(shard_dir.glob(".*.part")) + list(shard_dir.glob("*.npy")):
                if f.suffix == ".npy" and f.with_suffix(".json").exists():
                    continue
                try:
                    if f.stat().st_mtime < cutoff:
                        f.unlink()
                except FileNotFoundError:
                    pass
        return len(metas)

    def _write_shard(
        self, shard_dir: Path, keys: list[str], tracks: list[str], offsets: list[float], vectors: np.ndarray
    ) -> None:
        """Write one shard: the array first, then its index (which makes it count)."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        arr = np.ascontiguousarray(vectors, dtype=np.float32)

        def write_npy(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                self.write_array(f, arr)

        atomic_write(shard_dir / f"{name}.npy", write_npy)
        doc = {"keys": keys, "tracks": tracks, "offsets": [float(o) for o in offsets]}
        atomic_write_text(shard_dir / f"{name}.json", json.dumps(doc))

    # --- the station ---------------------------------------------------------------------------------------

    def embed(
        self,
        embedder: Embedder,
        manifest: Manifest,
        source: SegmentSource,
        tracks: Sequence[Track] | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        progress: bool = True,
        flush_every: int = 256,
        check_batch: bool = False,
    ) -> EmbeddingTable:
        """Embeddings of every vocal segment of ``tracks`` (default: all), computing only what is missing.

        Sets :attr:`computed` and :attr:`reused`. Every ``flush_every`` new embeddings or ``FLUSH_SECONDS``
        (and when the run stops, also by Ctrl-C or an error) what was computed is written, so a rerun
        resumes. ``check_batch`` runs ``validate``'s batch-independence check on the first computed batch.
        """
        name = embedder.plugin_name()
        dim = embedder.embedding_dim
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
            raise UserError(f"plugin {name!r} declares embedding_dim={dim!r}; it must be a positive integer")
        dim = int(dim)
        want = {k: v for k, v in embedder.audio_config().items() if k in source.audio_config()}
        if want != source.audio_config():
            raise UserError(f"plugin {name!r} wants audio {want}, but the segment source delivers {source.audio_config()}")

        segments = list(manifest.segments(tracks))
        keys = self.keys(manifest, source, segments, progress=progress)
        folder = self.model_dir(embedder)
        self.computed = self.flushed = 0
        missing, missing_keys, index = self._missing(folder, segments, keys, dim)
        self.reused = len(set(keys)) - len(missing_keys)

        if missing:
            try:
                self._write_meta(folder, embedder)
            except OSError as e:
                if e.errno not in DISK_ERRNOS:
                    raise
                raise disk_error(e, "the embedding cache") from None
            with self._turn(folder, manifest.name):
                # a run that held the turn before may have computed these meanwhile
                missing, missing_keys, index = self._missing(folder, segments, keys, dim)
                self.reused = len(set(keys)) - len(missing_keys)
                if missing:
                    source.prepare(list(dict.fromkeys(t for t, _ in missing)), progress=progress)
                    self._compute(embedder, source, folder, missing, missing_keys, batch_size, device, progress,
                                  flush_every, check_batch)
                    index = self.index(folder, dim)  # with the shards just written
        vectors = self._gather(index, keys, dim) if keys else np.empty((0, dim), dtype=np.float32)
        return EmbeddingTable(
            track_ids=[t.id for t, _ in segments],
            offsets=np.asarray([o for _, o in segments], dtype=np.float64),
            vectors=vectors,
        )

    def _missing(
        self, folder: Path, segments: list[tuple[Track, float]], keys: list[str], dim: int
    ) -> tuple[list[tuple[Track, float]], list[str], dict[str, tuple[Path, int]]]:
        """The segments (and keys) of ``keys`` no complete shard holds yet, each once, and the index they were
        looked up in (read once per check: every shard's index and array header)."""
        index = self.index(folder, dim)
        missing: list[tuple[Track, float]] = []
        missing_keys: list[str] = []
        queued: set[str] = set()
        for seg, k in zip(segments, keys, strict=True):
            if k not in index and k not in queued:
                queued.add(k)
                missing.append(seg)
                missing_keys.append(k)
        return missing, missing_keys, index

    @staticmethod
    @contextmanager
    def _turn(folder: Path, dataset: str) -> Iterator[None]:
        """Hold the lock of (this model, ``dataset``): concurrent runs take turns instead of embedding twice."""
        path = folder / f".lock-{_hash(dataset, 12)}"
        try:
            handle = open(path, "a")
        except OSError as e:
            if e.errno not in DISK_ERRNOS:
                raise
            raise disk_error(e, "the embedding cache's lock file") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another run is embedding %s with this model; waiting for it to finish", dataset)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _compute(
        self,
        embedder: Embedder,
        source: SegmentSource,
        folder: Path,
        missing: list[tuple[Track, float]],
        missing_keys: list[str],
        batch_size: int,
        device: str,
        progress: bool,
        flush_every: int,
        check_batch: bool = False,
    ) -> None:
        from singerbench.validate import batch_dependence

        name = embedder.plugin_name()
        dim = int(embedder.embedding_dim)
        embedder.eval()
        embedder.to(device)
        pend_keys: list[str] = []
        pend_items: list[tuple[Track, float]] = []
        pend_vecs: list[np.ndarray] = []
        lock = threading.Lock()
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            with lock:
                self._flush(folder, pend_keys, pend_items, pend_vecs)
                pend_keys.clear()
                pend_items.clear()
                pend_vecs.clear()
                last_flush = time.monotonic()

        bar = Progress(f"embedding ({name})", len(missing), "seg", bar=progress)
        bar.set_postfix(reused=self.reused)
        done, finished = 0, False
        try:
            with torch.inference_mode():
                for items, batch in source.batches(missing, batch_size):
                    out = embedder.embed(batch.to(device))
                    vec = _check_output(name, out, len(items), dim)
                    if check_batch and done == 0 and len(items) > 1:
                        problem = batch_dependence(embedder, batch.to(device), out)
                        if problem:
                            raise UserError(
                                f"model {name!r} violates the plugin contract: {problem}; nothing was stored "
                                f"(`singerbench validate` runs every check)"
                            )
                    pend_keys.extend(missing_keys[done : done + len(items)])
                    pend_items.extend(items)
                    pend_vecs.append(vec)
                    done += len(items)
                    self.computed = done
                    bar.update(len(items))
                    if len(pend_keys) >= flush_every or time.monotonic() - last_flush >= FLUSH_SECONDS:
                        flush()
            finished = True
        finally:
            # whatever was computed and checked is kept, also on Ctrl-C or a plugin error
            bar.close(finished)
            flush()


def _write_npy(f, arr: np.ndarray) -> None:
    """``np.save`` through Python's own ``write`` and an fsync, so a full disk raises ``OSError(ENOSPC)``.

    ``np.save`` on a real file writes with C ``fwrite`` (``ndarray.tofile``), which can truncate silently or
    fail without an errno when the disk is full or a file size limit is hit.
    """
    buf = io.BytesIO()
    np.save(buf, arr)
    f.write(buf.getbuffer())
    f.flush()
    os.fsync(f.fileno())


def _check_output(name: str, out: object, batch: int, dim: int) -> np.ndarray:
    """A plugin's batch output as float32 numpy, or a UserError saying what is wrong with it."""
    if not isinstance(out, torch.Tensor):
        raise UserError(f"plugin {name!r} returned {type(out).__name__} from embed(); it must return a torch.Tensor")
    if tuple(out.shape) != (batch, dim):
        raise UserError(
            f"plugin {name!r} returned shape {tuple(out.shape)} for a batch of {batch}; "
            f"it declares embedding_dim={dim} (expected ({batch}, {dim}))"
        )
    if not out.is_floating_point():
        raise UserError(f"plugin {name!r} returned dtype {out.dtype}; embeddings must be floating point")
    vec = out.detach().to("cpu", torch.float32).numpy()
    if not np.isfinite(vec).all():
        bad = int((~np.isfinite(vec)).any(axis=1).sum())
        raise UserError(f"plugin {name!r} returned NaN or infinite values ({bad} of {batch} embeddings in a batch)")
    return vec
