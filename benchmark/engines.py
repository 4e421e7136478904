"""Embedding engines: who decodes, separates and embeds the segments that the store is missing.

``local`` does it in this process (:meth:`EmbeddingStore.embed`). ``ray`` hands the missing segments to Ray
Data (``map_batches`` over an actor pool, GPUs per actor where the cluster has them): every actor builds the
plugin from its spec, cuts the very batches the local engine would cut, and writes each finished batch as a
shard straight into the shared content-addressed store. The driver then reads the table through the local
path, which finds everything cached, so the result is the local engine's. A killed worker loses at most its
current batch: Ray restarts the actor and retries, and a rerun computes only what has no shard yet.

The store must be on a path every node sees with POSIX atomic rename: a local disk (one machine), NFS v4,
Lustre, BeeGFS, GPFS. Object stores (S3, GCS) and file systems without atomic rename are not supported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.manifest import Manifest, Track
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore, EmbeddingTable, _check_output


@dataclass
class EmbedJob:
    """What an engine needs to rebuild the plugin and its audio elsewhere (a worker process or node)."""

    model_spec: str
    separator: str | None = None
    cache_dir: Path | None = None
    batch_size: int = 16
    device: str = "cpu"
    progress: bool = True
    address: str | None = None  # Ray cluster address; None starts a local Ray


def local_engine(job: EmbedJob, store: EmbeddingStore, embedder: Embedder, manifest: Manifest,
                 source: SegmentSource) -> EmbeddingTable:
    """Embed in this process."""
    return store.embed(embedder, manifest, source, batch_size=job.batch_size, device=job.device,
                       progress=job.progress, check_batch=True)


def missing_batches(store: EmbeddingStore, embedder: Embedder, manifest: Manifest, source: SegmentSource,
                    batch_size: int) -> list[list[tuple[Track, float, str]]]:
    """The segments without a stored embedding, cut into the batches the local engine would embed."""
    segments = list(manifest.segments())
    keys = store.keys(manifest, source, segments)
    index = store.index(store.model_dir(embedder))
    todo, seen = [], set()
    for (track, offset), key in zip(segments, keys, strict=True):
        if key not in index and key not in seen:
            seen.add(key)
            todo.append((track, offset, key))
    return [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]


class EmbedBatches:
    """One worker: builds the plugin and its SegmentSource once, then embeds batches into the shared store.

    Called by Ray Data with ``{"index": array}`` (batch numbers); also callable directly, without Ray.
    """

    def __init__(self, job: EmbedJob, store_root: str, batches: list[list[tuple[Track, float, str]]]) -> None:
        from singerbench.registry import resolve_model
        from singerbench.run import make_separator

        self.embedder = resolve_model(job.model_spec).embedder
        self.device = job.device
        self.embedder.eval()
        self.embedder.to(self.device)
        self.source = SegmentSource.for_embedder(
            self.embedder, separator=make_separator(job.separator, job.cache_dir, job.device)
        )
        self.store = EmbeddingStore(Path(store_root))
        self.folder = self.store.model_dir(self.embedder)
        self.batches = batches

    def __call__(self, batch: dict) -> dict:
        done = []
        for i in np.asarray(batch["index"]).tolist():
            items = self.batches[int(i)]
            x = torch.from_numpy(np.stack([self.source.segment(t, o) for t, o, _ in items]))
            with torch.inference_mode():
                out = self.embedder.embed(x.to(self.device))
            vec = _check_output(self.embedder.plugin_name(), out, len(items), int(self.embedder.embedding_dim))
            self.store._write_shard(self.folder / "shards", [k for _, _, k in items], [t.id for t, _, _ in items],
                                    [o for _, o, _ in items], vec)
            done.append(len(items))
        return {"index": np.asarray(batch["index"]), "embedded": np.asarray(done, dtype=np.int64)}


def ray_engine(job: EmbedJob, store: EmbeddingStore, embedder: Embedder, manifest: Manifest,
               source: SegmentSource) -> EmbeddingTable:
    """Embed the missing segments on a Ray cluster (local when ``job.address`` is None), then read the table."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'singerbench[ray]'") from None
    batches = missing_batches(store, embedder, manifest, source, job.batch_size)
    store._write_meta(store.model_dir(embedder), embedder)
    computed = sum(len(b) for b in batches)
    if batches:
        started_here = not ray.is_initialized()
        if started_here:
            try:
                ray.init(address=job.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise UserError(f"cannot reach a Ray cluster at {job.address!r}: {e}") from None
        try:
            resources = ray.cluster_resources()
            gpus = 1 if resources.get("GPU", 0) >= 1 and job.device != "cpu" else 0
            actors = int(resources.get("GPU", 0)) if gpus else max(1, int(resources.get("CPU", 1)) // 2)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = job.progress
            t0 = time.perf_counter()
            ds = ray.data.from_items([{"index": i} for i in range(len(batches))])
            out = ds.map_batches(
                EmbedBatches,
                fn_constructor_kwargs={"job": job, "store_root": str(store.root.resolve()), "batches": batches},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=min(actors, len(batches))),
                num_gpus=gpus,
                num_cpus=1 if not gpus else 0,
                # a dead actor is restarted and its batch retried: Ray Data's defaults for actor pools
                # (max_restarts=-1, max_task_retries=-1; passing them is deprecated from Ray 2.60)
            )
            embedded = sum(int(np.sum(b["embedded"])) for b in out.iter_batches(batch_size=None))
            if embedded != computed:
                raise UserError(f"Ray embedded {embedded} of {computed} segments; rerun to resume")
            if job.progress:
                print(f"ray: {computed} segments embedded on {actors} actor(s) in {time.perf_counter() - t0:.1f} s")
        finally:
            if started_here:
                ray.shutdown()
    table = store.embed(embedder, manifest, source, batch_size=job.batch_size, device=job.device,
                        progress=job.progress)  # everything is stored now: this reads the table
    store.computed, store.reused = computed + store.computed, store.reused - computed
    return table


ENGINES: dict[str, Callable[..., EmbeddingTable]] = {"local": local_engine, "ray": ray_engine}
"""The registry: engine name -> function(job, store, embedder, manifest, source) -> EmbeddingTable."""


def get_engine(name: str) -> Callable[..., EmbeddingTable]:
    try:
        return ENGINES[name]
    except KeyError:
        raise UserError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}") from None
