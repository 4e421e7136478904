"""The similarity probe (the paper's Fig. 4): does a test track's embedding sit near its voice or its backing?

For every eval track whose dataset has both stems, the model embeds the track as it hears it (its input kind)
and, at the same offsets, the track's true vocal stem and true instrumental stem. Per track, the mean cosine
similarity of its segment embeddings with

- ``same_singer``: every segment of the training songs of its target singer(s) (all pairs),
- ``vocal_stem``: its own vocal stem at the same offset (segment i with segment i),
- ``instrumental_stem``: its own instrumental stem at the same offset,
- ``other_singers``: every segment of the other singers' training songs (all pairs).

A mixture model whose embeddings sit closer to the instrumental than to the vocal stem hears the backing more
than the voice. Stem embeddings go through the embedding store like any other (cache hits on the next run);
their keys name the stem, so they never mix with the model's own inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from singerbench.embedder import Embedder
from singerbench.manifest import Manifest, Track
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore, EmbeddingTable
from singerbench.verification import unit_rows

STEMS = ("vocals", "instrumental")
PAIRS = ("same_singer", "vocal_stem", "instrumental_stem", "other_singers")
PAIR_LABELS = {
    "same_singer": "the singer's other songs",
    "vocal_stem": "the same song's vocal stem",
    "instrumental_stem": "the same song's instrumental stem",
    "other_singers": "other singers' songs",
}


class StemSource(SegmentSource):
    """Delivers one stem of a track (``vocals`` or ``instrumental``, the dataset's own file) in the audio format a
    plugin asked for, whatever the plugin's input kind; the store keys its segments by the stem."""

    def __init__(self, embedder: Embedder, stem: str) -> None:
        if stem not in STEMS:
            raise ValueError(f"stem {stem!r} is not one of {STEMS}")
        super().__init__(embedder.sample_rate, embedder.channels, embedder.input_kind, embedder.segment_seconds)
        self.stem = stem

    def needs_separation(self, track: Track) -> bool:
        return False

    def stem_path(self, track: Track) -> Path:
        return track.stem(self.stem)

    def identity_file(self, track: Track) -> Path:
        return track.stem(self.stem)

    def stem_id(self, track: Track) -> str:
        # "dataset" is what a vocals plugin's own source calls the dataset's vocal stem: the same embeddings
        return "dataset" if self.stem == "vocals" else f"dataset:{self.stem}"


def probe_tracks(manifest: Manifest, roles: Sequence[str]) -> list[Track]:
    """The eval tracks that carry both stems (the probe's subjects)."""
    return [t for r in roles for t in manifest.by_role(r) if t.vocals is not None and t.instrumental is not None]


def embed_stems(
    store: EmbeddingStore, embedder: Embedder, manifest: Manifest, tracks: Sequence[Track], *,
    batch_size: int, device: str, progress: bool,
) -> tuple[dict[str, EmbeddingTable], dict[str, int]]:
    """The stem embeddings of ``tracks`` per stem, and the store counters summed over both stems."""
    tables, computed, reused = {}, 0, 0
    for stem in STEMS:
        tables[stem] = store.embed(embedder, manifest, StemSource(embedder, stem), tracks=list(tracks),
                                   batch_size=batch_size, device=device, progress=progress)
        computed, reused = computed + store.computed, reused + store.reused
    return tables, {"computed": computed, "reused": reused}


def similarities(
    manifest: Manifest, table: EmbeddingTable, stems: dict[str, EmbeddingTable], roles: Sequence[str]
) -> dict[str, dict]:
    """Per eval role: ``{"tracks": n, "means": {pair: mean over tracks}, "per_track": {id: {pair: value}}}``.

    ``table`` holds the model's own segment embeddings (the probed tracks and every training song); ``stems``
    those of the probed tracks' stems (tracks without stem embeddings are left out). The all-pairs means use mean(e·o) = e·mean(o) over unit vectors, so they cost one sum per singer.
    """
    index = {s: i for i, s in enumerate(manifest.singers)}
    dim = table.vectors.shape[1]
    sums = np.zeros((len(index), dim))
    counts = np.zeros(len(index))
    for t in manifest.by_role("train"):
        seg = unit_rows(table.for_track(t.id))
        sums[index[t.singers[0]]] += seg.sum(axis=0)
        counts[index[t.singers[0]]] += len(seg)
    out: dict[str, dict] = {}
    embedded = set(stems["vocals"].track_ids) & set(stems["instrumental"].track_ids)
    for role in roles:
        per_track: dict[str, dict[str, float]] = {}
        for t in (t for t in probe_tracks(manifest, [role]) if t.id in embedded):
            e = unit_rows(table.for_track(t.id))
            own = [index[s] for s in t.singers]
            others = [i for i in range(len(index)) if i not in set(own) and counts[i] > 0]
            if counts[own].sum() == 0 or not others:
                continue
            same = sums[own].sum(axis=0) / counts[own].sum()
            other = sums[others].sum(axis=0) / counts[others].sum()
            per_track[t.id] = {
                "same_singer": float((e @ same).mean()),
                "vocal_stem": float(np.sum(e * unit_rows(stems["vocals"].for_track(t.id)), axis=1).mean()),
                "instrumental_stem": float(np.sum(e * unit_rows(stems["instrumental"].for_track(t.id)), axis=1).mean()),
                "other_singers": float((e @ other).mean()),
            }
        if per_track:
            means = {p: float(np.mean([v[p] for v in per_track.values()])) for p in PAIRS}
            out[role] = {"tracks": len(per_track), "means": means, "per_track": per_track}
    return out
