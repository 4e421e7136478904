"""SegmentSource: turns (track, offset) into exactly the waveform a plugin asked for.

It picks the right stem (the mixture, the dataset's vocal or instrumental stem, or one separated by Demucs
and cached), decodes the whole track once (soundfile), resamples it (soxr), matches channels (mono duplicated
to stereo, stereo averaged to mono), peak-normalises it per track as the paper's code did, and cuts
segments. A segment that runs past the end of the track is zero-padded to the full segment length; an
offset at or after the end is a user error. :meth:`SegmentSource.batches` decodes in a background thread
with a bounded queue, so the model does not wait for the decoder.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from singerbench.audio import load_audio, peak_normalise
from singerbench.embedder import INPUT_KINDS, Embedder
from singerbench.errors import UserError
from singerbench.manifest import Track
from singerbench.separation import Separator

#: how many decoded tracks a SegmentSource keeps (a few: segments usually arrive grouped by track).
TRACK_CACHE_SIZE = 4


class SegmentSource:
    """Delivers peak-normalised segments of the plugin's input kind, sample rate, channels and length."""

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        input_kind: str,
        segment_seconds: float = 6.0,
        separator: Separator | None = None,
        prefetch: int = 2,
    ) -> None:
        if input_kind not in INPUT_KINDS:
            raise UserError(f"input kind {input_kind!r} is not one of {', '.join(INPUT_KINDS)}")
        if channels not in (1, 2):
            raise UserError(f"{channels} channels asked; singerbench delivers 1 (mono) or 2 (stereo)")
        if not sample_rate > 0 or not segment_seconds > 0:
            raise UserError(f"sample rate ({sample_rate}) and segment length ({segment_seconds}) must be > 0")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.input_kind = input_kind
        self.segment_seconds = float(segment_seconds)
        self.separator = separator
        self.prefetch = max(1, int(prefetch))
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_embedder(cls, embedder: Embedder, separator: Separator | None = None, prefetch: int = 2) -> SegmentSource:
        """The source that delivers what ``embedder`` declares (sample rate, channels, input kind, length)."""
        return cls(
            sample_rate=embedder.sample_rate,
            channels=embedder.channels,
            input_kind=embedder.input_kind,
            segment_seconds=embedder.segment_seconds,
            separator=separator,
            prefetch=prefetch,
        )

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))

    def audio_config(self) -> dict:
        """The same fields as :meth:`Embedder.audio_config`, to check that a source fits a plugin."""
        return {
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "input_kind": self.input_kind,
            "segment_seconds": self.segment_seconds,
        }

    # --- which file a track's audio comes from -----------------------------------------------------

    def given_stem(self, track: Track) -> Path | None:
        """The dataset's own file for this source's input kind (the mixture, or a stem), None when it has none."""
        try:
            return track.stem(self.input_kind)
        except LookupError:
            return None

    def needs_separation(self, track: Track) -> bool:
        """True when this track's stem has to come from the separator (a stem asked, none in the dataset)."""
        return self.given_stem(track) is None

    def stem_id(self, track: Track) -> str:
        """Where the track's stem comes from: ``mixture``, ``dataset`` (its own stem) or the separator's id.

        Part of the embedding store's segment key, so embeddings of true and separated stems never mix.
        """
        if self.input_kind == "mixture":
            return "mixture"
        if not self.needs_separation(track):
            return "dataset"
        sep_id = self._separator_for(track).separator_weights_id()
        return sep_id if self.input_kind == "vocals" else f"{sep_id}:{self.input_kind}"

    def provenance(self, track: Track) -> str:
        """For results: ``none`` (the mixture), ``given`` (the dataset's stem) or ``separator:<name>@<weights id>``."""
        if self.input_kind == "mixture":
            return "none"
        if not self.needs_separation(track):
            return "given"
        sep = self._separator_for(track)
        return f"separator:{getattr(sep, 'model_name', type(sep).__name__)}@{sep.separator_weights_id()}"

    def identity_file(self, track: Track) -> Path:
        """The file whose bytes determine the stem: the stem itself, or the mixture a separator works on."""
        return self.given_stem(track) or track.audio

    def _separator_for(self, track: Track) -> Separator:
        if self.separator is None:
            raise UserError(
                f"the plugin listens to {self.input_kind} and track {track.id!r} has no such stem: give the stem "
                f"in the manifest's '{self.input_kind}' column, or pass a separator "
                "(--separator htdemucs with demucs installed: pip install 'singerbench[separation]')"
            )
        return self.separator

    def stem_path(self, track: Track) -> Path:
        """The file to decode for ``track``; separates (and caches) the stem when the dataset lacks it."""
        given = self.given_stem(track)
        if given is not None:
            return given
        separator = self._separator_for(track)
        return separator.vocals(track) if self.input_kind == "vocals" else separator.instrumental(track)

    def prepare(self, tracks: Sequence[Track], progress: bool = True) -> None:
        """Separate, up front and with a progress bar, every stem these tracks still need."""
        todo = [t for t in tracks if self.needs_separation(t)]
        if todo:
            self._separator_for(todo[0]).separate_all(todo, progress=progress, kind=self.input_kind)

    # --- decoding and cutting --------------------------------------------------------------------------

    def load_track(self, track: Track) -> np.ndarray:
        """The whole track's stem as ``(channels, samples)`` float32, peak-normalised (cached, a few tracks)."""
        path = self.stem_path(track)
        key = (track.id, str(path))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        x = load_audio(path, self.sample_rate, self.channels)
        x = peak_normalise(x, f"track {track.id!r} ({path})")
        x.setflags(write=False)
        with self._lock:
            self._cache[key] = x
            while len(self._cache) > TRACK_CACHE_SIZE:
                self._cache.popitem(last=False)
        return x

    def cut(self, audio: np.ndarray, track: Track, offset: float) -> np.ndarray:
        """The segment at ``offset`` seconds of an already loaded track, zero-padded at the track's end."""
        n = audio.shape[1]
        start = int(round(offset * self.sample_rate))
        if offset < 0 or start >= n:
            raise UserError(
                f"track {track.id!r}: offset {offset:.3f} s is "
                + ("negative" if offset < 0 else f"at or after the end of its audio ({n / self.sample_rate:.3f} s)")
            )
        want = self.segment_samples
        out = np.zeros((self.channels, want), dtype=np.float32)
        piece = audio[:, start : start + want]
        out[:, : piece.shape[1]] = piece
        return out

    def segment(self, track: Track, offset: float) -> np.ndarray:
        """``(channels, segment_samples)`` float32 at ``offset`` seconds of the track's stem."""
        return self.cut(self.load_track(track), track, offset)

    def batches(
        self, segments: Sequence[tuple[Track, float]], batch_size: int
    ) -> Iterator[tuple[list[tuple[Track, float]], torch.Tensor]]:
        """Yield ``(items, tensor (B, channels, samples) float32)`` in the input's order.

        A background thread decodes and cuts ahead of the consumer (at most ``prefetch`` batches queued).
        Each track is decoded once when its segments are adjacent in the input (as ``Manifest.segments``
        yields them); a small LRU covers a few interleaved tracks. Errors in the thread are re-raised here.
        """
        if batch_size < 1:
            raise UserError(f"batch size must be at least 1, not {batch_size}")
        segments = list(segments)
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        end = object()

        def put(obj: object) -> bool:
            while not stop.is_set():
                try:
                    q.put(obj, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for i in range(0, len(segments), batch_size):
                    items = segments[i : i + batch_size]
                    arrays = [self.segment(t, off) for t, off in items]
                    if stop.is_set() or not put((items, torch.from_numpy(np.stack(arrays)))):
                        return
                put(end)
            except BaseException as e:  # handed to the consumer, which raises it in its own thread
                put(_Failure(e))

        thread = threading.Thread(target=produce, name="singerbench-decode", daemon=True)
        thread.start()
        try:
            while True:
                obj = q.get()
                if obj is end:
                    return
                if isinstance(obj, _Failure):
                    raise obj.error
                yield obj
        finally:
            stop.set()
            thread.join(timeout=30)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
