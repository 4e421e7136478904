"""``singerbench run``: one pass through the stations, from a model spec and a dataset to a RunResult on disk.

Model → Manifest → SegmentSource → EmbeddingStore → Protocol → RunResult. This module only wires the stations;
each does its own job and knows nothing of the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from singerbench.datasets import load_dataset
from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.paths import station_dir
from singerbench.presets import Preset, get_preset
from singerbench.protocol import ProtocolData, TrackEmbeddings, run_protocol
from singerbench.registry import ResolvedModel, resolve_model
from singerbench.results import DatasetInfo, ModelInfo, RunResult, default_result_path
from singerbench.segments import SegmentSource
from singerbench.similarity import embed_stems, probe_tracks, similarities
from singerbench.store import EmbeddingStore, EmbeddingTable
from singerbench.verification import verify

EVAL_ROLES = ("test", "cloned")


@dataclass
class RunRequest:
    """Everything ``singerbench run`` was asked to do; every field is recorded in the result."""

    model: str
    dataset: str
    dataset_options: dict = field(default_factory=dict)
    preset: str = "paper"
    runs: int = 10
    seed: int = 0
    device: str = "auto"
    cache_dir: Path | None = None
    output: Path | None = None
    leaderboard_dir: Path = Path("leaderboard")
    batch_size: int = 16
    class_counts: list[int] | None = None
    separator: str | None = None
    progress: bool = True
    #: take the preset's class-count sweep (capped by the dataset) instead of ``class_counts``
    sweep: bool = False
    #: also run the similarity probe: embed the eval tracks' vocal and instrumental stems (docs/results.md)
    probe: bool = False


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for, but torch sees no CUDA device here; use --device cpu")
    return device


def protocol_data(manifest: Manifest, table: EmbeddingTable) -> ProtocolData:
    """Group the store's segment embeddings by track and role, with class indices in the manifest's order."""
    index = {s: i for i, s in enumerate(manifest.singers)}

    def track_embeddings(role: str) -> list[TrackEmbeddings]:
        return [
            TrackEmbeddings(t.id, tuple(index[s] for s in t.singers), table.for_track(t.id))
            for t in manifest.by_role(role)
        ]

    return ProtocolData(
        singers=list(manifest.singers),
        train=track_embeddings("train"),
        val=track_embeddings("val"),
        eval_sets={role: track_embeddings(role) for role in EVAL_ROLES if manifest.by_role(role)},
    )


def track_info(manifest: Manifest) -> dict[str, dict]:
    """Per eval track what the analyses group by, so a report needs no dataset: genre, language, and the number
    of training songs of its singer (the fewest among a clone's targets)."""
    songs: dict[str, int] = {}
    for t in manifest.by_role("train"):
        songs[t.singers[0]] = songs.get(t.singers[0], 0) + 1
    return {
        t.id: {"genre": t.genre, "language": t.language, "train_songs": min(songs.get(s, 0) for s in t.singers)}
        for role in EVAL_ROLES for t in manifest.by_role(role)
    }


def class_counts_for(req: RunRequest, manifest: Manifest, preset: Preset) -> list[int] | None:
    """The class counts to run: the preset's sweep with ``--sweep`` (cloned targets always classes), else as asked."""
    if not req.sweep:
        return req.class_counts
    if req.class_counts:
        raise UserError("--sweep and --class-counts both name class counts; give one of them")
    required = {s for role in EVAL_ROLES if role != "test" for t in manifest.by_role(role) for s in t.singers}
    return preset.sweep_counts(len(manifest.singers), len(required))


def make_separator(name: str | None, cache_dir: Path | None, device: str):
    """A Demucs separator for datasets without vocal stems, built only when a vocals plugin needs one."""
    if name is None:
        return None
    from singerbench.separation import DemucsSeparator

    return DemucsSeparator(model=name, cache_dir=cache_dir, device=device)


def probe_subjects(manifest: Manifest) -> list:
    """The eval tracks the similarity probe embeds; a UserError when the dataset has no stems to probe."""
    tracks = probe_tracks(manifest, EVAL_ROLES)
    if not tracks:
        raise UserError(
            f"--probe needs eval tracks with both a vocal and an instrumental stem; dataset {manifest.name!r} has "
            "none (the generated singers have them: --dataset synth)"
        )
    return tracks


def similarity_probe(
    store: EmbeddingStore, embedder, manifest: Manifest, table: EmbeddingTable, req: RunRequest, device: str
) -> dict:
    """Embed the eval tracks' stems (store hits after the first time) and compute the similarity probe."""
    tracks = probe_subjects(manifest)
    stems, counters = embed_stems(store, embedder, manifest, tracks, batch_size=req.batch_size, device=device,
                                  progress=req.progress)
    return {"stems": "dataset", "sets": similarities(manifest, table, stems, EVAL_ROLES), "store": counters}


def run_benchmark(req: RunRequest) -> tuple[RunResult, Path]:
    """Evaluate one model on one dataset with one preset; write and return the result."""
    started = time.perf_counter()
    device = pick_device(req.device)
    preset = get_preset(req.preset)
    model: ResolvedModel = resolve_model(req.model)
    embedder = model.embedder
    manifest = load_dataset(
        req.dataset, {"cache_dir": req.cache_dir, "progress": req.progress}, **req.dataset_options
    )
    class_counts = class_counts_for(req, manifest, preset)
    if req.probe:
        probe_subjects(manifest)  # fail before any embedding work
    needs_separation = embedder.input_kind == "vocals" and any(t.vocals is None for t in manifest.tracks)
    separator = make_separator(req.separator or ("htdemucs" if needs_separation else None), req.cache_dir, device)
    source = SegmentSource.for_embedder(embedder, separator=separator)
    source.prepare(manifest.tracks, progress=req.progress)
    weights_id = embedder.weights_id()
    output = req.output or default_result_path(
        req.leaderboard_dir, embedder.name, manifest.name, preset.name, weights_id
    )

    store = EmbeddingStore(station_dir("embeddings", req.cache_dir))
    t0 = time.perf_counter()
    table = store.embed(embedder, manifest, source, batch_size=req.batch_size, device=device, progress=req.progress)
    embed_s = time.perf_counter() - t0
    embedded_computed, embedded_reused = store.computed, store.reused

    data = protocol_data(manifest, table)
    outcome = run_protocol(
        data,
        preset,
        runs=req.runs,
        seed=req.seed,
        device=device,
        class_counts=class_counts,
        progress=req.progress,
    )
    # after the protocol, which checks the data and names any bad track
    analyses: dict = {"track_info": track_info(manifest), "verification": verify(data, seed=req.seed)}
    if req.probe:
        analyses["similarity"] = similarity_probe(store, embedder, manifest, table, req, device)
    result = RunResult.from_outcome(
        outcome,
        ModelInfo.from_embedder(embedder, model.spec, model.source),
        DatasetInfo.from_manifest(manifest),
        embedding_seconds=embed_s,
        total_seconds=time.perf_counter() - started,
        computed=embedded_computed,
        reused=embedded_reused,
        **analyses,
    )
    result.to_json(output)
    return result, output
