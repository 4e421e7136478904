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
from singerbench.engines import EmbedJob, get_engine
from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.paths import station_dir
from singerbench.presets import get_preset
from singerbench.protocol import ProtocolData, TrackEmbeddings, run_protocol
from singerbench.registry import ResolvedModel, resolve_model
from singerbench.results import DatasetInfo, ModelInfo, RunResult, default_result_path
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore, EmbeddingTable

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
    engine: str = "local"  # who embeds: a name in singerbench.engines.ENGINES (local, ray)
    address: str | None = None  # Ray cluster address for engine "ray"; None starts a local Ray


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


def make_separator(name: str | None, cache_dir: Path | None, device: str):
    """A Demucs separator for datasets without vocal stems, built only when a vocals plugin needs one."""
    if name is None:
        return None
    from singerbench.separation import DemucsSeparator

    return DemucsSeparator(model=name, cache_dir=cache_dir, device=device)


def run_benchmark(req: RunRequest) -> tuple[RunResult, Path]:
    """Evaluate one model on one dataset with one preset; write and return the result."""
    started = time.perf_counter()
    get_engine(req.engine)  # an unknown engine is a user error before anything is loaded
    device = pick_device(req.device)
    preset = get_preset(req.preset)
    model: ResolvedModel = resolve_model(req.model)
    embedder = model.embedder
    manifest = load_dataset(
        req.dataset, {"cache_dir": req.cache_dir, "progress": req.progress}, **req.dataset_options
    )
    needs_separation = embedder.input_kind == "vocals" and any(t.vocals is None for t in manifest.tracks)
    separator_name = req.separator or ("htdemucs" if needs_separation else None)
    separator = make_separator(separator_name, req.cache_dir, device)
    source = SegmentSource.for_embedder(embedder, separator=separator)
    source.prepare(manifest.tracks, progress=req.progress)
    weights_id = embedder.weights_id()
    output = req.output or default_result_path(
        req.leaderboard_dir, embedder.name, manifest.name, preset.name, weights_id
    )

    store = EmbeddingStore(station_dir("embeddings", req.cache_dir))
    t0 = time.perf_counter()
    job = EmbedJob(model_spec=req.model, separator=separator_name,
                   cache_dir=req.cache_dir, batch_size=req.batch_size, device=device, progress=req.progress,
                   address=req.address)
    table = get_engine(req.engine)(job, store, embedder, manifest, source)
    embed_s = time.perf_counter() - t0

    outcome = run_protocol(
        protocol_data(manifest, table),
        preset,
        runs=req.runs,
        seed=req.seed,
        device=device,
        class_counts=req.class_counts,
        progress=req.progress,
    )
    result = RunResult.from_outcome(
        outcome,
        ModelInfo.from_embedder(embedder, model.spec, model.source),
        DatasetInfo.from_manifest(manifest),
        embedding_seconds=embed_s,
        total_seconds=time.perf_counter() - started,
        computed=store.computed,
        reused=store.reused,
    )
    result.to_json(output)
    return result, output
